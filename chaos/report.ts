import fs from 'node:fs';
import type { CampaignReport } from './campaign';
import { FAULT_KINDS, RUN_KINDS } from './schedule';

/** The command that runs the same campaign again (same fault schedule, same runs and choices). */
export function replayCommand(r: Pick<CampaignReport, 'minutes' | 'seed'> & { options: { workers: number } }): string {
  // the schedule is a function of the seed, the minutes and the worker count (chaos/schedule.ts)
  return `npm run chaos -- --minutes ${r.minutes} --seed ${r.seed}${r.options.workers === 3 ? '' : ` --workers ${r.options.workers}`}`;
}

const skewed = (ms: number) => (ms ? `, worker 0's clock ${Math.abs(ms / 1000)} s ${ms > 0 ? 'ahead' : 'behind'}` : '');

const secs = (ms: number | null) => (ms === null ? '–' : `${(ms / 1000).toFixed(1)} s`);

/** The report as Markdown: the section docs/RELIABILITY.md keeps, and what `--report x.md` writes. */
export function renderReport(r: CampaignReport): string {
  const runs = r.runs.length;
  const lines = [
    `Campaign of ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC: \`${replayCommand(r)}\`, ${r.seconds} s in all ` +
      `(${r.minutes} min of faults, then up to ${r.options.settleMs / 1000} s for open runs to close) on ${r.machine}; ` +
      `${r.options.workers} worker processes${skewed(r.clockSkewMs)}; kept in flight: ${r.options.inFlight.backfill} backfills, ` +
      `${r.options.inFlight.rollout} rollouts, ${r.options.inFlight.graph} rollout graph${r.options.inFlight.graph === 1 ? '' : 's'} and ` +
      `${r.options.inFlight.fleet} fleet${r.options.inFlight.fleet === 1 ? '' : 's'}` +
      `${r.options.inFlight.fleet ? ` (over ${r.options.tenants} tenant databases)` : ''}; ${r.options.workload.rowsPerTable} rows per table.`,
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
    lines.push('Violations (each replays with its seed: the command above):', '');
    for (const v of r.violations) lines.push(`- seed ${r.seed}, ${v.run}: ${v.what}`);
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
    '| planned at | at | fault | on | down | recovery |',
    '|---|---|---|---|---|---|',
    ...r.faults.map(
      (f) => `| ${f.plannedAt.toFixed(0)} s | ${f.at.toFixed(0)} s | ${f.kind} | ${f.target} | ${secs(f.downMs)} | ${secs(f.recoveryMs)} |`,
    ),
    '',
    '</details>',
    '',
  );
  return lines.join('\n');
}

/** What a campaign is, above its figures in docs/RELIABILITY.md. */
const ABOUT = [
  '`npm run chaos -- --minutes N --seed S [--report file] [--doc]` starts a stack of its own (a Temporal dev server with',
  'its history on disk, an embedded PostgreSQL with four tenant databases, three `dist/worker` processes that reach',
  'PostgreSQL and the tenants through a loopback TCP proxy, serve the tenants as fleet targets (a targets file) and post',
  "notifications to a local webhook receiver; worker 0's clock runs 30 s to 5 min ahead or behind, as the seed says) and,",
  'for N minutes, keeps running at once: backfills (integer, uuid and composite keys, transform `n = n + 1`); rollouts',
  '(alterColumn qty int -> bigint with `up: qty * 10`, createIndex, addForeignKey, an approval the campaign approves or',
  'rolls back, contract); rollout graphs across two tables (accounts: addColumn ref with its backfill, then addUnique;',
  'ledger, in a branch at the same time: addColumn account_ref with its backfill; then addForeignKey ledger.account_ref',
  '-> accounts.ref, a gate over both, an approval, both contracts); and a fleet over the tenants (a canary, the',
  "campaign's approve, then the rest two at a time) of a rollout with addColumn and its backfill, a backfill step",
  '`n = n + 1`, a gate and contract, where a rollback decision plants a row the gate refuses in the second wave so',
  'the fleet halts and is rolled back. Each run has a live writer on its tables. Meanwhile a scheduler injects one fault',
  'at a time: a worker SIGKILLed (started again) or SIGSTOPped (continued), the Temporal dev server or PostgreSQL',
  "(postmaster and every backend) SIGKILLed and started again on the same data and port, stagefill's sessions ended",
  "with `pg_terminate_backend`, the workers' connections stalled or dropped by the proxy, the webhook receiver slow or",
  'failing. The fault schedule (kinds, planned offsets, durations, the worker hit), the clock skew and the run mix (the',
  "n-th run of each kind: its key, approve or roll back, its live writer's seed) are pure functions of the seed",
  '(chaos/schedule.ts, test/unit/chaos-schedule.test.ts): the same command replays them; only how the system takes them',
  '(how long a restart lasts, how many runs fit in the time) may differ. Then, after up to five minutes for open runs',
  'to close, a checker reads the whole history: every backfilled row has n = 1; every rollout and graph completed (the',
  'catalog and data its spec gives, no trigger left) or rolled back (the catalog of every table it touched and the',
  'data identical to the snapshot taken before it); every fleet ended as the campaign decided, each target completed',
  '(w = v * 2 and n = 1 on every row) or as before, its change run once (n never 2); every acknowledged live write is',
  'there (a write whose commit the fault made uncertain may or may not be); every approve or rollback signal of a',
  'rollout audited once; no run left open; no trigger, version schema, INVALID index, stagefill column or table lock',
  'left, in the tenants too. Exit 1 on any violation, each listed with the seed that replays it. A short campaign (seed',
  '34, two minutes, with a graph but no fleet) runs in `npm test` (test/integration/chaos.test.ts).',
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
