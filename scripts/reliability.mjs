#!/usr/bin/env node
// `npm run reliability`: the whole suite (scripts/test.mjs), then docs/RELIABILITY.md from
// what it proved: every fault, security and bad-input test with its outcome and duration,
// and the facts the fault tests recorded (kills survived, rows verified, ...). The fault campaign's section
// (`npm run chaos -- --doc`, between its chaos:begin/chaos:end markers) is kept as it stands.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-reliability-'));
const report = path.join(work, 'facts.jsonl');
const started = Date.now();
const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'test.mjs'), ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, STAGEFILL_REPORT: report, STAGEFILL_JEST_JSON_DIR: work },
});
const minutes = ((Date.now() - started) / 60_000).toFixed(1);

const read = (f) => (fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : { testResults: [] });
const results = [...read(path.join(work, 'unit.json')).testResults, ...read(path.join(work, 'integration.json')).testResults];
const facts = fs.existsSync(report)
  ? fs
      .readFileSync(report, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
  : [];

const rel = (f) => path.relative(root, f);
const tests = results.flatMap((file) =>
  file.assertionResults.map((a) => ({ file: rel(file.name), title: a.fullName ?? a.title, status: a.status, ms: a.duration ?? 0 })),
);
const pick = (re) => tests.filter((t) => re.test(t.file));
const row = (t) =>
  `| ${t.title.replace(/\|/g, '\\|')} | ${t.status === 'passed' ? 'passed' : `**${t.status}**`} | ${(t.ms / 1000).toFixed(1)} s |`;
const table = (list) => (list.length ? ['| test | outcome | time |', '|---|---|---|', ...list.map(row)].join('\n') : '_none ran_');
const passed = tests.filter((t) => t.status === 'passed').length;
const failed = tests.filter((t) => t.status === 'failed').length;

const lines = [
  '# Reliability',
  '',
  `Written by \`npm run reliability\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC (${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}); the suite took ${minutes} minutes: ${passed} passed, ${failed} failed.`,
  'Every test runs against a real Temporal dev server and a real PostgreSQL 15; faults are real signals on real processes. Regenerate it with the same command.',
  '',
  '## Facts recorded by the fault tests',
  '',
  facts.length
    ? [
        '| test | what it proved |',
        '|---|---|',
        ...facts.map(
          (f) =>
            `| ${f.test} | ${Object.entries(f.facts)
              .map(([k, v]) => `${k}: ${v}`)
              .join(', ')} |`,
        ),
      ].join('\n')
    : '_no facts recorded_',
  '',
  '## Crashes, restarts and races',
  '',
  table(pick(/backfill-(crash|faults|control|window|workers)|worker-process|dev\.test|rollout\.test|replay|chaos/)),
  '',
  '## Exactly once per chunk',
  '',
  table(pick(/backfill\.test|rollout-graph/)),
  '',
  '## Security',
  '',
  table(pick(/security/)),
  '',
  '## Bad input (each rejected with the field named, nothing started)',
  '',
  table(pick(/unit\/spec|cli/)),
  '',
];
const doc = path.join(root, 'docs', 'RELIABILITY.md');
const previous = fs.existsSync(doc) ? fs.readFileSync(doc, 'utf8') : '';
const campaign = /<!-- chaos:begin[\s\S]*?<!-- chaos:end -->/.exec(previous);
if (campaign) lines.push(campaign[0], '');
fs.mkdirSync(path.join(root, 'docs'), { recursive: true });
fs.writeFileSync(doc, lines.join('\n'));
process.stdout.write(`wrote docs/RELIABILITY.md (${tests.length} tests, ${facts.length} recorded facts)\n`);
fs.rmSync(work, { recursive: true, force: true });
process.exit(r.status ?? 1);
