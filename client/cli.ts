import { Command, Option, CommanderError } from 'commander';
import { loadSpecFile, SpecError, formatSpecError } from '../spec/load';
import type { BackfillSpec } from '../spec';
import { parseDuration } from '../plan/duration';
import { isValidTimeZone } from '../plan/window';
import { ConfigError } from '../worker/config';
import { createPool } from '../db/pool';
import { connect, ConnectOptions, ConnectionError, StagefillConnection } from './connection';
import { startRun, replayBackfill, ReplayError } from './runs';
import {
  getProgress,
  sendControl,
  cancelRun,
  setThrottle,
  listRuns,
  waitForRun,
  AlreadyRunningError,
  NotFoundError,
  NotApplicableError,
  ControlVerb,
} from './operations';
import { printPlan } from './plan-output';
import { watchRun, formatStatus } from './watch';
import { readHistory, formatHistory } from './history';
import {
  createSchedule,
  listSchedules,
  pauseSchedule,
  unpauseSchedule,
  deleteSchedule,
  ScheduleExistsError,
  ScheduleInfo,
} from './schedules';

/** Exit codes: 0 success, 1 the run (or a connection) failed, 2 invalid input. */
export class UsageError extends Error {}

const program = new Command();
program
  .name('stagefill')
  .description('Staged, reversible schema changes and chunked exactly-once backfills for live PostgreSQL tables, on Temporal.')
  .version(require('../../package.json').version)
  .showHelpAfterError()
  .exitOverride();

/** The worker's variables, each overridable by its flag (flags win). */
function connectionOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--address <host:port>', 'Temporal frontend').env('TEMPORAL_ADDRESS'))
    .addOption(new Option('--namespace <ns>', 'Temporal namespace').env('TEMPORAL_NAMESPACE'))
    .addOption(new Option('--task-queue <name>', 'task queue the workers poll').env('STAGEFILL_TASK_QUEUE'))
    .addOption(new Option('--tls-cert <file>', 'mTLS client certificate (with --tls-key)').env('TEMPORAL_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'mTLS client key (with --tls-cert)').env('TEMPORAL_TLS_KEY'))
    .addOption(new Option('--tls-ca <file>', "CA certificate of the server, when it is not in the system's store").env('TEMPORAL_TLS_CA'));
}

async function withConnection<T>(opts: ConnectOptions, fn: (conn: StagefillConnection) => Promise<T>): Promise<T> {
  const conn = await connect(opts);
  try {
    return await fn(conn);
  } finally {
    await conn.close();
  }
}

const print = (s: string) => process.stdout.write(s + '\n');
const examples = (...lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

program
  .command('plan')
  .description('validate a spec and print what it will do (chunk plan, steps, rollback) without changing anything')
  .argument('<spec>', 'YAML or JSON spec file')
  .option('--format <format>', 'text | json | mermaid', 'text')
  .addHelpText('after', examples('stagefill plan examples/backfill-orders-total.yaml', 'stagefill plan rollout.yaml --format mermaid'))
  .action(async (file: string, opts: { format: string }) => {
    if (!['text', 'json', 'mermaid'].includes(opts.format)) throw new UsageError(`--format: expected text, json or mermaid, got "${opts.format}"`);
    const spec = loadSpecFile(file);
    print(await printPlan(spec, opts.format as 'text' | 'json' | 'mermaid'));
  });

connectionOptions(
  program
    .command('start')
    .description('start a backfill or rollout from a spec file and print its workflow id')
    .argument('<spec>', 'YAML or JSON spec file')
    .option('--wait', 'follow it to the end; the exit code is its outcome')
    .option('--restart', 'backfill: start a new generation instead of continuing from checkpoints')
    .addHelpText('after', examples('stagefill start examples/backfill-orders-total.yaml', 'stagefill start examples/add-computed-column.yaml --wait')),
).action(async (file: string, opts: ConnectOptions & { wait?: boolean; restart?: boolean }) => {
  const spec = loadSpecFile(file);
  await withConnection(opts, async (conn) => {
    const run = await startRun(conn, spec, { restart: opts.restart });
    print(run.workflowId);
    if (spec.kind === 'backfill') await reportContinuation(conn, run.workflowId);
    if (opts.wait) process.exitCode = await watchRun(conn, run.workflowId, { bar: false });
  });
});

/** After a start, say whether checkpoints of an earlier run were picked up. */
async function reportContinuation(conn: StagefillConnection, workflowId: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const p = await getProgress<{ state: string; continued?: boolean; chunksDone?: number }>(conn, workflowId).catch(() => undefined);
    if (p && p.state !== 'starting') {
      if (p.continued) process.stderr.write(`continuing from checkpoints: ${p.chunksDone} chunks already done (use --restart to start over)\n`);
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

connectionOptions(
  program
    .command('status')
    .description("print a run's progress: state, chunks, rows, rate, ETA, steps")
    .argument('<workflow-id>')
    .option('--json', 'machine-readable output')
    .addHelpText('after', examples('stagefill status stagefill-backfill:public.orders:total --json')),
).action(async (id: string, opts: ConnectOptions & { json?: boolean }) => {
  await withConnection(opts, async (conn) => {
    const p = await getProgress(conn, id);
    print(opts.json ? JSON.stringify(p, null, 2) : formatStatus(p));
  });
});

connectionOptions(
  program
    .command('watch')
    .description('follow a run with a live progress bar; exits with its outcome (0 completed, 1 failed or rolled back)')
    .argument('<workflow-id>')
    .addHelpText('after', examples('stagefill watch stagefill-backfill:public.orders:total')),
).action(async (id: string, opts: ConnectOptions) => {
  await withConnection(opts, async (conn) => {
    process.exitCode = await watchRun(conn, id, { bar: Boolean(process.stdout.isTTY) });
  });
});

const REASONS: Record<ControlVerb, string> = {
  pause: 'peak traffic',
  resume: 'traffic back to normal',
  approve: 'dashboards look right',
  rollback: 'reports disagree',
  retry: 'replica caught up',
};

for (const [verb, what] of [
  ['pause', 'pause a backfill after its in-flight chunks commit, or a rollout before its next step'],
  ['resume', 'resume a paused backfill or rollout (a held rollout goes on with retry or rollback)'],
  ['approve', "approve a rollout's approval step"],
  ['rollback', 'roll a rollout back to the state before it started'],
  ['retry', 'run the failed checks of a held rollout again (or the revert a rollback held on); it goes on if they pass'],
] as const) {
  connectionOptions(
    program
      .command(verb)
      .description(what)
      .argument('<workflow-id>')
      .option('--by <who>', 'who is acting, for the audit trail (default: $STAGEFILL_ACTOR or user@host)')
      .option('--reason <text>', 'why, for the audit trail')
      .addHelpText('after', examples(`stagefill ${verb} ${verb === 'pause' || verb === 'resume' ? 'stagefill-backfill:public.orders:total' : 'stagefill-rollout:orders-total'} --reason "${REASONS[verb]}"`)),
  ).action(async (id: string, opts: ConnectOptions & { by?: string; reason?: string }) => {
    await withConnection(opts, async (conn) => {
      await sendControl(conn, id, verb as ControlVerb, { by: opts.by, reason: opts.reason });
      print(`${verb} sent to ${id}`);
    });
  });
}

connectionOptions(
  program
    .command('cancel')
    .description('cancel a run: a backfill stops after its current chunk; a rollout rolls back')
    .argument('<workflow-id>')
    .addHelpText('after', examples('stagefill cancel stagefill-backfill:public.orders:total')),
).action(async (id: string, opts: ConnectOptions) => {
  await withConnection(opts, async (conn) => {
    await cancelRun(conn, id);
    print(`cancellation requested for ${id}`);
  });
});

connectionOptions(
  program
    .command('replay')
    .description('re-run the chunks of a completed backfill that cover [from, to), exactly once more, as a new generation of checkpoints (the earlier generation stays for audit)')
    .argument('<name>', "the backfill's name, as in its spec")
    .requiredOption('--from <key>', 'start of the key range (inclusive)')
    .requiredOption('--to <key>', 'end of the key range (exclusive)')
    .option('--table <table>', 'schema.table, when backfills of that name exist on several tables')
    .option('--wait', 'follow it to the end; the exit code is its outcome')
    .addOption(new Option('--database-url <url>', 'the database the backfill changed (its checkpoints and spec live there)').env('DATABASE_URL'))
    .addHelpText('after', examples('stagefill replay orders-total --from 2026-03-01 --to 2026-03-08 --wait', 'stagefill replay orders-total --from 500000 --to 600000 --table public.orders')),
).action(async (name: string, opts: ConnectOptions & { from: string; to: string; table?: string; wait?: boolean; databaseUrl?: string }) => {
  if (!opts.databaseUrl) throw new UsageError('--database-url: not set; pass it or set DATABASE_URL to the database the backfill changed');
  await withConnection(opts, async (conn) => {
    const run = await replayBackfill(conn, opts.databaseUrl!, name, { from: opts.from, to: opts.to, table: opts.table });
    print(run.workflowId);
    if (opts.wait) process.exitCode = await watchRun(conn, run.workflowId, { bar: false });
  });
});

connectionOptions(
  program
    .command('throttle')
    .description('change chunk size, rate limit, target chunk time or parallelism of a running backfill')
    .argument('<workflow-id>')
    .option('--chunk-size <rows>', 'rows per chunk', toInt)
    .option('--max-rows-per-second <n>', 'rate limit (0 removes it)', Number)
    .option('--target-chunk-ms <ms>', 'adaptive chunk size target (0 turns it off)', toInt)
    .option('--parallelism <n>', 'lanes working at once', toInt)
    .addHelpText('after', examples('stagefill throttle stagefill-backfill:public.orders:total --max-rows-per-second 2000')),
).action(async (id: string, opts: ConnectOptions & { chunkSize?: number; maxRowsPerSecond?: number; targetChunkMs?: number; parallelism?: number }) => {
  await withConnection(opts, async (conn) => {
    const settings = await setThrottle(conn, id, {
      chunkSize: opts.chunkSize,
      parallelism: opts.parallelism,
      maxRowsPerSecond: opts.maxRowsPerSecond === undefined ? undefined : opts.maxRowsPerSecond || null,
      targetChunkMs: opts.targetChunkMs === undefined ? undefined : opts.targetChunkMs || null,
    });
    print(JSON.stringify(settings));
  });
});

connectionOptions(
  program
    .command('list')
    .description('list backfills and rollouts, filtered through their search attributes')
    .option('--kind <kind>', 'backfill | rollout')
    .option('--table <table>', 'schema.table')
    .option('--state <state>', 'e.g. running, paused, held, failed, rolled_back')
    .option('--limit <n>', 'at most this many, newest first', toInt, 100)
    .option('--json', 'machine-readable output')
    .addHelpText('after', examples('stagefill list --kind backfill --state running', 'stagefill list --table public.orders --json')),
).action(async (opts: ConnectOptions & { kind?: 'backfill' | 'rollout'; table?: string; state?: string; limit: number; json?: boolean }) => {
  if (opts.kind && !['backfill', 'rollout'].includes(opts.kind)) throw new UsageError(`--kind: expected backfill or rollout, got "${opts.kind}"`);
  await withConnection(opts, async (conn) => {
    const runs = await listRuns(conn, { kind: opts.kind, table: opts.table, state: opts.state, limit: opts.limit });
    if (opts.json) return print(JSON.stringify(runs, null, 2));
    if (!runs.length) return print('no runs match');
    for (const r of runs) print(`${r.workflowId}\t${r.kind ?? '?'}\t${(r.tables ?? []).join(',')}\t${r.state ?? '?'}\t${r.status}\t${r.startTime}`);
  });
});

connectionOptions(
  program
    .command('result')
    .description('wait for a run to close and print its result as JSON (exit 1 if it failed)')
    .argument('<workflow-id>')
    .addHelpText('after', examples('stagefill result stagefill-backfill:public.orders:total')),
).action(async (id: string, opts: ConnectOptions) => {
  await withConnection(opts, async (conn) => print(JSON.stringify(await waitForRun(conn, id), null, 2)));
});

program
  .command('history')
  .description("print a run's audit trail from stagefill's tables (DATABASE_URL): events with actors; a backfill's generations and checkpoints; a rollout's steps and gate results")
  .argument('<workflow-id>')
  .addOption(new Option('--database-url <url>', 'the database stagefill changes (where its audit lives)').env('DATABASE_URL'))
  .option('--json', 'machine-readable output')
  .addHelpText('after', examples('stagefill history stagefill-backfill:public.orders:total', 'stagefill history stagefill-rollout:orders-total --json'))
  .action(async (id: string, opts: { databaseUrl?: string; json?: boolean }) => {
    if (!opts.databaseUrl) throw new UsageError('--database-url: not set; pass it or set DATABASE_URL to the database the run changed (the audit lives there)');
    const pool = createPool({ url: opts.databaseUrl, max: 1, applicationName: 'stagefill-history' });
    try {
      const h = await readHistory(pool, id);
      if (!h.events.length && !h.backfill && !h.rollout) throw new NotFoundError(`no audit for ${id} in this database; check the id (\`stagefill list\`) and DATABASE_URL`);
      print(opts.json ? JSON.stringify(h, null, 2) : formatHistory(h));
    } finally {
      await pool.end();
    }
  });

const schedule = program
  .command('schedule')
  .description('run a backfill in nightly windows with a Temporal Schedule: each firing works until the window ends and the next one continues from the checkpoints')
  .addHelpText('after', examples('stagefill schedule create examples/backfill-orders-total.yaml --cron "0 1 * * *" --window 4h', 'stagefill schedule list'));

connectionOptions(
  schedule
    .command('create')
    .description('create a schedule whose firings start the backfill with a window; never two firings at once (overlap: skip)')
    .argument('<spec>', 'a backfill spec file')
    .option('--cron <expr>', 'when to fire, e.g. "0 1 * * *" (01:00 every day)')
    .option('--every <duration>', 'or fire at a fixed interval, e.g. 6h')
    .option('--window <duration>', 'how long each firing may work, e.g. 4h; it then stops cleanly as window_closed')
    .option('--time-zone <tz>', 'IANA time zone for --cron', 'UTC')
    .option('--id <schedule-id>', 'schedule id (default stagefill-schedule:<table>:<name>)')
    .option('--paused', 'create it paused')
    .addHelpText('after', examples('stagefill schedule create examples/backfill-orders-total.yaml --cron "0 1 * * *" --window 4h --time-zone Europe/Berlin', 'stagefill schedule create backfill.yaml --every 30m --window 10m --id orders-total-halfhourly')),
).action(async (file: string, opts: ConnectOptions & { cron?: string; every?: string; window?: string; timeZone: string; id?: string; paused?: boolean }) => {
  if (Boolean(opts.cron) === Boolean(opts.every)) throw new UsageError('--cron or --every: give exactly one, e.g. --cron "0 1 * * *" or --every 6h');
  const everyMs = opts.every === undefined ? undefined : durationOption('--every', opts.every);
  const windowMs = opts.window === undefined ? undefined : durationOption('--window', opts.window);
  if (opts.cron && opts.cron.trim().split(/\s+/).length !== 5) throw new UsageError(`--cron: "${opts.cron}" is not a five-field cron expression (minute hour day month weekday), e.g. "0 1 * * *"`);
  if (opts.cron && !isValidTimeZone(opts.timeZone)) throw new UsageError(`--time-zone: "${opts.timeZone}" is not an IANA time zone; write e.g. UTC or Europe/Berlin`);
  const spec = loadSpecFile(file);
  if (spec.kind !== 'backfill') throw new UsageError(`kind: schedules run backfills, and ${file} is a ${spec.kind}; start a rollout with \`stagefill start\``);
  await withConnection(opts, async (conn) => {
    const info = await createSchedule(conn, spec as BackfillSpec, { cron: opts.cron, everyMs, windowMs, timeZone: opts.cron ? opts.timeZone : undefined, scheduleId: opts.id, paused: opts.paused });
    print(info.scheduleId);
    process.stderr.write(`next firings: ${info.nextRuns.slice(0, 3).join(', ') || '(none: paused)'}\n`);
  });
});

connectionOptions(
  schedule
    .command('list')
    .description("list stagefill's schedules with their next and recent firings")
    .option('--json', 'machine-readable output')
    .addHelpText('after', examples('stagefill schedule list', 'stagefill schedule list --json')),
).action(async (opts: ConnectOptions & { json?: boolean }) => {
  await withConnection(opts, async (conn) => {
    const all = await listSchedules(conn);
    if (opts.json) return print(JSON.stringify(all, null, 2));
    if (!all.length) return print('no schedules');
    for (const s of all) print(formatSchedule(s));
  });
});

for (const [verb, what, fn] of [
  ['pause', 'stop a schedule from firing (a firing already running goes on until its window closes)', pauseSchedule],
  ['unpause', 'let a paused schedule fire again', unpauseSchedule],
  ['delete', 'delete a schedule (the checkpoints stay; a new schedule or start continues from them)', deleteSchedule],
] as const) {
  connectionOptions(
    schedule
      .command(verb)
      .description(what)
      .argument('<schedule-id>')
      .addHelpText('after', examples(`stagefill schedule ${verb} stagefill-schedule:public.orders:total`)),
  ).action(async (id: string, opts: ConnectOptions) => {
    await withConnection(opts, async (conn) => {
      await fn(conn, id);
      print(`schedule ${id}: ${verb}${verb.endsWith('e') ? 'd' : 'ed'}`);
    });
  });
}

function formatSchedule(s: ScheduleInfo): string {
  const when = s.cron ? `cron "${s.cron}" ${s.timeZone ?? 'UTC'}` : s.everyMs ? `every ${formatMs(s.everyMs)}` : '?';
  const window = s.windowMs ? `window ${formatMs(s.windowMs)}` : 'no window';
  const last = s.recentRuns[s.recentRuns.length - 1];
  return `${s.scheduleId}\t${s.table ?? '?'}\t${s.name ?? '?'}\t${when}\t${window}\t${s.isPaused ? 'paused' : 'active'}\tnext ${s.nextRuns[0] ?? '-'}\tlast ${last?.workflowId ?? '-'}`;
}

program
  .command('worker')
  .description('run a worker: polls the task queue until SIGINT/SIGTERM, then drains (config from the environment)')
  .addHelpText('after', examples('DATABASE_URL=postgres://stagefill@127.0.0.1:5432/app TEMPORAL_ADDRESS=127.0.0.1:7233 stagefill worker'))
  .action(async () => {
    const { runWorkerMain } = await import('../worker/main');
    process.exitCode = await runWorkerMain();
  });

program
  .command('dev')
  .description(
    'run a local Temporal dev server (with the Web UI) and PostgreSQL until Ctrl-C; prints their addresses and writes .stagefill/dev.env. ' +
      'Ports: 7233 (Temporal), 8233 (Web UI), 55432 (PostgreSQL) when free, else the ones of the last start, else free ones (it says so). ' +
      'TEMPORAL_ADDRESS / DATABASE_URL in the environment are used instead, if they answer (exit 1 if not)',
  )
  .option('--fresh', 'start with empty history and database')
  .option('--state-dir <dir>', 'where history, the database, ports.json and dev.env live (default <project>/.stagefill)')
  .addOption(new Option('--temporal-port <port>', 'preferred Temporal frontend port (default 7233)').env('STAGEFILL_DEV_TEMPORAL_PORT'))
  .addOption(new Option('--ui-port <port>', 'preferred Web UI port (default 8233)').env('STAGEFILL_DEV_UI_PORT'))
  .addOption(new Option('--postgres-port <port>', 'preferred PostgreSQL port (default 55432)').env('STAGEFILL_DEV_POSTGRES_PORT'))
  .addHelpText('after', examples('stagefill dev', 'source .stagefill/dev.env && temporal workflow list', 'stagefill dev --temporal-port 17233 --ui-port 18233'))
  .action(async (opts: { fresh?: boolean; stateDir?: string; temporalPort?: string; uiPort?: string; postgresPort?: string }) => {
    const { runDev } = await import('./dev');
    process.exitCode = await runDev(opts);
  });

program
  .command('demo')
  .description('start the embedded stack and a worker, load a demo table of ~1M rows, run a staged rollout with a backfill on it')
  .option('--exit', 'stop everything after the run instead of keeping the stack up for the Web UI')
  .option('--rows <n>', 'rows in the demo table', toInt, 1_000_000)
  .option('--state-dir <dir>', 'where the embedded stack keeps its state and dev.env (default <project>/.stagefill)')
  .addHelpText('after', examples('stagefill demo', 'stagefill demo --exit --rows 200000'))
  .action(async (opts: { exit?: boolean; rows: number; stateDir?: string }) => {
    const { runDemo } = await import('./demo');
    process.exitCode = await runDemo(opts);
  });

function toInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`expected a whole number, got "${v}"`);
  return n;
}

function durationOption(flag: string, v: string): number {
  const ms = parseDuration(v);
  if (!ms) throw new UsageError(`${flag}: "${v}" is not a duration; write e.g. 30s, 15m, 4h or 1h30m`);
  return ms;
}

const formatMs = (ms: number) => (ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`);

/** Runs the CLI; returns the exit code instead of exiting, so tests can call it in-process too. */
export async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err);
  }
}

export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof SpecError) {
    process.stderr.write(formatSpecError(err) + '\n');
    return 2;
  }
  if (err instanceof UsageError || err instanceof ConfigError || err instanceof NotApplicableError || err instanceof ReplayError) {
    process.stderr.write(`stagefill: ${err.message}\n`);
    return 2;
  }
  if (err instanceof AlreadyRunningError || err instanceof NotFoundError || err instanceof ConnectionError || err instanceof ScheduleExistsError) {
    process.stderr.write(`stagefill: ${err.message}\n`);
    return 1;
  }
  process.stderr.write(`stagefill: ${(err as Error)?.message ?? String(err)}\n`);
  if (process.env.STAGEFILL_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
  return 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
