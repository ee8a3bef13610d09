import type { Command } from 'commander';
import type { ConnectOptions } from './connection';
import type { ControlVerb } from './operations';
import { sendControl, cancelRun, setThrottle, defaultActor } from './operations';
import type { BaselineRefresh, ThrottleChange, ThrottleSettings } from '../core/backfill/throttle';
import { UsageError } from './errors';
import { connectionOptions, withConnection, print, examples, toInt, JSON_HELP } from './cli-common';

const REASONS: Record<ControlVerb, string> = {
  pause: 'peak traffic',
  resume: 'traffic back to normal',
  approve: 'dashboards look right',
  rollback: 'reports disagree',
  retry: 'replica caught up',
};

/** The verbs that steer a running run: pause, resume, approve, rollback, retry, cancel, throttle. */
export function registerControlVerbs(program: Command): void {
  for (const [verb, what] of [
    ['pause', 'pause a backfill after its in-flight chunks commit, or a rollout before its next step'],
    ['resume', 'resume a paused backfill or rollout (a held rollout goes on with retry or rollback)'],
    ['approve', "approve a rollout's approval step"],
    ['rollback', 'roll a rollout back to the state before it started'],
    [
      'retry',
      "run the failed checks of a held rollout again (or the revert a rollback held on); it goes on if they pass. On a halted fleet: run its wave's failed targets again (a target the wave's soak failed is soaked again, its change is not rerun)",
    ],
  ] as const) {
    connectionOptions(
      program
        .command(verb)
        .description(`${what}; a run that has closed answers "run is completed" (or failed, …) and exit 1`)
        .argument('<workflow-id>')
        .option('--by <who>', 'who is acting, for the audit trail (default: $STAGEFILL_ACTOR or user@host)')
        .option('--reason <text>', 'why, for the audit trail')
        .option('--json', `${JSON_HELP}: {workflowId, action, by, reason}`)
        .addHelpText(
          'after',
          examples(
            `stagefill ${verb} ${verb === 'pause' || verb === 'resume' ? 'stagefill-backfill:public.orders:total' : 'stagefill-rollout:orders-total'} --reason "${REASONS[verb]}"`,
          ),
        ),
    ).action(async (id: string, opts: ConnectOptions & { by?: string; reason?: string; json?: boolean }) => {
      await withConnection(opts, async (conn) => {
        const by = opts.by ?? defaultActor();
        await sendControl(conn, id, verb, { by, reason: opts.reason });
        print(opts.json ? JSON.stringify({ workflowId: id, action: verb, by, reason: opts.reason ?? null }) : `${verb} sent to ${id}`);
      });
    });
  }

  connectionOptions(
    program
      .command('cancel')
      .description(
        'cancel a run: a backfill stops after its current chunk; a rollout rolls back; a fleet rolls back its targets that have not contracted',
      )
      .argument('<workflow-id>')
      .option('--json', `${JSON_HELP}: {workflowId, action: "cancel"}`)
      .addHelpText('after', examples('stagefill cancel stagefill-backfill:public.orders:total')),
  ).action(async (id: string, opts: ConnectOptions & { json?: boolean }) => {
    await withConnection(opts, async (conn) => {
      await cancelRun(conn, id);
      print(opts.json ? JSON.stringify({ workflowId: id, action: 'cancel' }) : `cancellation requested for ${id}`);
    });
  });

  connectionOptions(
    program
      .command('throttle')
      .description(
        'change chunk size, rate limit, target chunk time, parallelism, latency budget or replica-lag limit of a running backfill; prints the settings now in force',
      )
      .argument('<workflow-id>')
      .option('--chunk-size <rows>', 'rows per chunk', toInt)
      .option('--max-rows-per-second <n>', 'rate limit (0 removes it)', Number)
      .option('--target-chunk-ms <ms>', 'adaptive chunk size target (0 turns it off)', toInt)
      .option('--parallelism <n>', 'lanes working at once', toInt)
      .option('--latency-p99-ms <ms>', "latency budget: keep the probe's p99 under this (0 removes the budget)", Number)
      .option('--latency-p99-ratio <x>', 'latency budget: at most this many times the p99 measured before the first chunk', Number)
      .option(
        '--baseline-refresh <everyMs[/holdMs]|off>',
        'with --latency-p99-ratio: measure the baseline again every everyMs, holding the backfill holdMs (default 90000/6000); off: once',
      )
      .option('--max-replica-lag-ms <ms>', 'hold while a streaming replica replays further behind (0 removes the limit)', toInt)
      .option('--on-replica-missing <hold|ignore>', 'a replica that disappears holds the backfill, or is only reported')
      .option(
        '--json',
        `${JSON_HELP}: the settings object now in force (chunkSize, minChunkSize, maxChunkSize, parallelism, maxRowsPerSecond?, targetChunkMs?, …)`,
      )
      .addHelpText(
        'after',
        examples(
          'stagefill throttle stagefill-backfill:public.orders:total --max-rows-per-second 2000',
          'stagefill throttle stagefill-backfill:public.orders:total --latency-p99-ms 5',
          'stagefill throttle stagefill-backfill:public.orders:total --latency-p99-ratio 2 --baseline-refresh 120000/8000',
          'stagefill throttle stagefill-backfill:public.orders:total --json',
        ),
      ),
  ).action(async (id: string, opts: ConnectOptions & ThrottleOptions & { json?: boolean }) => {
    await withConnection(opts, async (conn) => {
      const settings = await setThrottle(conn, id, {
        chunkSize: opts.chunkSize,
        parallelism: opts.parallelism,
        maxRowsPerSecond: opts.maxRowsPerSecond === undefined ? undefined : opts.maxRowsPerSecond || null,
        targetChunkMs: opts.targetChunkMs === undefined ? undefined : opts.targetChunkMs || null,
        ...latencyChange(opts),
      });
      print(opts.json ? JSON.stringify(settings) : formatThrottle(id, settings));
    });
  });
}

interface ThrottleOptions {
  chunkSize?: number;
  maxRowsPerSecond?: number;
  targetChunkMs?: number;
  parallelism?: number;
  latencyP99Ms?: number;
  latencyP99Ratio?: number;
  baselineRefresh?: string;
  maxReplicaLagMs?: number;
  onReplicaMissing?: 'hold' | 'ignore';
}

/** The latency-budget and replica-lag part of `stagefill throttle` (core/backfill/throttle.ts validates it in the workflow). */
function latencyChange(o: ThrottleOptions): ThrottleChange {
  const change: ThrottleChange = {};
  if (o.latencyP99Ms !== undefined) change.latency = o.latencyP99Ms ? { p99Ms: o.latencyP99Ms } : null;
  if (o.latencyP99Ratio !== undefined) change.latency = { p99Ratio: o.latencyP99Ratio };
  if (o.baselineRefresh !== undefined) {
    // the update replaces the whole budget: the refresh is part of a ratio budget given with it
    if (o.latencyP99Ratio === undefined)
      throw new UsageError('--baseline-refresh goes with --latency-p99-ratio (the update replaces the whole budget); give both');
    change.latency = { p99Ratio: o.latencyP99Ratio, refresh: parseRefresh(o.baselineRefresh) };
  }
  if (o.maxReplicaLagMs !== undefined) change.maxReplicaLagMs = o.maxReplicaLagMs || null;
  if (o.onReplicaMissing !== undefined) change.onReplicaMissing = o.onReplicaMissing;
  return change;
}

/** `--baseline-refresh`: off, everyMs, or everyMs/holdMs (the workflow's validator checks the bounds). */
export function parseRefresh(v: string): BaselineRefresh | false {
  if (v === 'off') return false;
  const m = /^(\d+)(?:\/(\d+))?$/.exec(v);
  if (!m) throw new UsageError(`--baseline-refresh: expected off, everyMs or everyMs/holdMs (e.g. 90000/6000), got ${JSON.stringify(v)}`);
  return m[2] === undefined ? { everyMs: Number(m[1]) } : { everyMs: Number(m[1]), holdMs: Number(m[2]) };
}

function formatThrottle(id: string, t: ThrottleSettings): string {
  const rate = t.maxRowsPerSecond ? `${t.maxRowsPerSecond.toLocaleString('en-US')} rows/s` : 'no rate limit';
  const adaptive = t.targetChunkMs
    ? `adaptive to ${t.targetChunkMs} ms per chunk (${t.minChunkSize}-${t.maxChunkSize} rows)`
    : 'fixed chunk size';
  const budget = t.latency ? `, latency budget ${JSON.stringify(t.latency)}` : '';
  const lag = t.maxReplicaLagMs ? `, replica lag under ${t.maxReplicaLagMs} ms` : '';
  return `throttle of ${id}: chunks of ${t.chunkSize.toLocaleString('en-US')} rows, ${t.parallelism} lanes, ${rate}, ${adaptive}${budget}${lag}`;
}
