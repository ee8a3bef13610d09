import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { projectRoot } from '../devstack';
import { runCampaign, defaultOptions } from './campaign';
import { renderReport, replayCommand, writeDocSection } from './report';
import { removeStateDir } from './stack';

const say = (m: string) => process.stderr.write(`[chaos] ${new Date().toISOString().slice(11, 19)} ${m}\n`);

const positive = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive number, e.g. 5`);
  return n;
};

/**
 * `npm run chaos -- --minutes N --seed S`: a fault campaign on a stack of its own (see docs/RELIABILITY.md).
 * Exit 0 with no violations, 1 with any, 2 for bad arguments.
 */
async function main(): Promise<number> {
  const program = new Command('chaos')
    .description('many backfills and rollouts at once under seeded crashes, stalls and restarts; then a check of the whole history')
    .option('--minutes <n>', 'how long faults are injected and runs started', positive('--minutes'), 5)
    .option('--seed <n>', 'the seed of the fault schedule and the workload (the same seed replays them)', positive('--seed'), 1)
    .option('--workers <n>', 'worker processes', positive('--workers'), 3)
    .option('--report <file>', 'write the report there too (.json: the whole record; else Markdown)')
    .option('--doc', "write the figures into docs/RELIABILITY.md's campaign section")
    .option('--state-dir <dir>', 'where the stack keeps its data and logs (default: a fresh temporary folder, removed after a clean run)')
    .exitOverride();
  try {
    program.parse(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2;
    throw err;
  }
  const o = program.opts<{ minutes: number; seed: number; workers: number; report?: string; doc?: boolean; stateDir?: string }>();
  const root = projectRoot();
  const dir = o.stateDir ? path.resolve(o.stateDir) : fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-chaos-'));
  const opts = { ...defaultOptions(root, dir, o.minutes, Math.floor(o.seed), say), workers: Math.floor(o.workers) };
  const report = await runCampaign(opts);
  const md = renderReport(report);
  process.stdout.write(`${md}\n`);
  if (o.report) fs.writeFileSync(o.report, o.report.endsWith('.json') ? JSON.stringify(report, null, 2) : md);
  if (o.doc) writeDocSection(path.join(root, 'docs', 'RELIABILITY.md'), report);
  if (report.violations.length) {
    say(`${report.violations.length} violations; the stack's data and logs stay in ${dir}; replay: ${replayCommand(report)}`);
    return 1;
  }
  say(`0 violations over ${report.faults.length} faults and ${report.runs.length} runs (full record: ${path.join(dir, 'report.json')})`);
  if (!o.stateDir) removeStateDir(dir);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    say(`failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
