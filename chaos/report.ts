import fs from 'node:fs';
import type { CampaignReport } from './campaign';
import { FAULT_KINDS } from './faults';
import { RUN_KINDS } from './workload';

/** The command that runs the same campaign again (same fault schedule, same runs and choices). */
export function replayCommand(r: Pick<CampaignReport, 'minutes' | 'seed'>): string {
  return `npm run chaos -- --minutes ${r.minutes} --seed ${r.seed}`;
}

const secs = (ms: number | null) => (ms === null ? '–' : `${(ms / 1000).toFixed(1)} s`);

/** The report as Markdown: the section docs/RELIABILITY.md keeps, and what `--report x.md` writes. */
export function renderReport(r: CampaignReport): string {
  const runs = r.runs.length;
  const lines = [
    `Campaign of ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC: \`${replayCommand(r)}\`, ${r.seconds} s in all ` +
      `(${r.minutes} min of faults, then up to ${r.options.settleMs / 1000} s for open runs to close) on ${r.machine}; ` +
      `${r.options.workers} worker processes, ${r.options.backfills} backfills and ${r.options.rollouts} rollouts kept in flight, ` +
      `${r.options.workload.rowsPerTable} rows per table.`,
    '',
    `**${r.violations.length} violations** over ${r.faults.length} faults, ${runs} runs and ${r.rowsChecked} rows checked.`,
    '',
    '| fault | injected | recovery, median | recovery, max | no progress seen after |',
    '|---|---|---|---|---|',
    ...FAULT_KINDS.map((k) => {
      const f = r.recoveryByKind[k];
      return `| ${k} | ${r.faultsByKind[k]} | ${secs(f.medianMs)} | ${secs(f.maxMs)} | ${f.unseen} |`;
    }),
    '',
    'Recovery: from the end of the fault (the process restarted or continued, the stall or webhook outage over; for',
    'pg_terminate_backend and a dropped connection, the moment itself) to the next committed chunk or audit row anywhere.',
    `The webhook receiver took ${r.webhook.events} events (${r.webhook.deliveries} deliveries) and refused or let time out ${r.webhook.refused} requests.`,
    '',
    '| run | outcomes |',
    '|---|---|',
    ...RUN_KINDS.map(
      (k) =>
        `| ${k} | ${
          Object.entries(r.runsByKind[k])
            .map(([o, n]) => `${o}: ${n}`)
            .join(', ') || 'none'
        } |`,
    ),
    '',
  ];
  if (r.violations.length) {
    lines.push('Violations (replay with the command above):', '');
    for (const v of r.violations) lines.push(`- ${v.run}: ${v.what}`);
    lines.push('');
  }
  if (r.refusedStarts)
    lines.push(
      `${r.refusedStarts} worker starts were refused because Temporal or PostgreSQL was down at that moment (exit 1 with one line, as designed; started again a second later).`,
      '',
    );
  lines.push(
    '<details><summary>Every fault</summary>',
    '',
    '| at | fault | on | down | recovery |',
    '|---|---|---|---|---|',
    ...r.faults.map((f) => `| ${f.at.toFixed(0)} s | ${f.kind} | ${f.target} | ${secs(f.downMs)} | ${secs(f.recoveryMs)} |`),
    '',
    '</details>',
    '',
  );
  return lines.join('\n');
}

/** What a campaign is, above its figures in docs/RELIABILITY.md. */
const ABOUT = [
  '`npm run chaos -- --minutes N --seed S [--report file] [--doc]` starts a stack of its own (a Temporal dev server with',
  'its history on disk, an embedded PostgreSQL, three `dist/worker` processes that reach PostgreSQL through a loopback',
  'TCP proxy and post notifications to a local webhook receiver) and, for N minutes, keeps backfills (integer, uuid and',
  'composite keys, transform `n = n + 1`) and rollouts (alterColumn qty int -> bigint with `up: qty * 10`, createIndex,',
  'addForeignKey, an approval the campaign approves or rolls back, contract) running at once, each with a live writer on',
  'its table, while a scheduler drawn from the seed injects one fault at a time: a worker SIGKILLed (started again) or',
  'SIGSTOPped (continued), the Temporal dev server or PostgreSQL (postmaster and every backend) SIGKILLed and started again',
  "on the same data and port, stagefill's sessions ended with `pg_terminate_backend`, the workers' connections stalled or",
  'dropped by the proxy, the webhook receiver slow or failing. Then, after up to five minutes for open runs to close, a',
  'checker reads the whole history: every backfilled row has n = 1; every rollout completed (qty bigint and ten times',
  'its value, the index valid, the foreign key validated, no trigger left) or rolled back (catalog and data identical to',
  'the snapshot taken before it); every acknowledged live write is there (a write whose commit the fault made uncertain',
  'may or may not be); every approve or rollback signal audited once; no run left open; no trigger, version schema,',
  'INVALID index, stagefill column or table lock left. Exit 1 on any violation, with the seed to run it again. A short',
  'campaign (seed 34, two minutes) runs in `npm test` (test/integration/chaos.test.ts).',
].join('\n');

const BEGIN = '<!-- chaos:begin (written by npm run chaos -- --doc; scripts/reliability.mjs keeps it) -->';
const END = '<!-- chaos:end -->';

/** Puts the report into docs/RELIABILITY.md's campaign section, in place of the one there. */
export function writeDocSection(file: string, r: CampaignReport): void {
  const doc = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Reliability\n';
  const section = [BEGIN, '', '## Fault campaign', '', ABOUT, '', renderReport(r), END].join('\n');
  const at = doc.indexOf(BEGIN.slice(0, 18));
  const end = doc.indexOf(END);
  const next = at >= 0 && end > at ? doc.slice(0, at) + section + doc.slice(end + END.length) : `${doc.trimEnd()}\n\n${section}\n`;
  fs.writeFileSync(file, next);
}
