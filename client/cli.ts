import { Command, Option, CommanderError } from 'commander';
import { loadSpecFile, SpecError, formatSpecError } from '../spec/load';
import type { BackfillSpec } from '../spec';
import { ConfigError } from '../worker/config';
import { connect, ConnectOptions, ConnectionError, StagefillConnection } from './connection';
import {
  startBackfill,
  getProgress,
  sendControl,
  cancelRun,
  setThrottle,
  listRuns,
  waitForRun,
  AlreadyRunningError,
  NotFoundError,
  ControlVerb,
} from './operations';
import { printPlan } from './plan-output';
import { watchRun, formatStatus } from './watch';

/** Exit codes: 0 success, 1 the run (or a connection) failed, 2 invalid input. */
export class UsageError extends Error {}

const program = new Command();
program
  .name('stagefill')
  .description('Staged, reversible schema changes and chunked exactly-once backfills for live PostgreSQL tables, on Temporal.')
  .version(require('../../package.json').version)
  .showHelpAfterError()
  .exitOverride();

function connectionOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--address <host:port>', 'Temporal frontend').env('TEMPORAL_ADDRESS'))
    .addOption(new Option('--namespace <ns>', 'Temporal namespace').env('TEMPORAL_NAMESPACE'))
    .addOption(new Option('--task-queue <name>', 'task queue the workers poll').env('STAGEFILL_TASK_QUEUE'));
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
    .addHelpText('after', examples('stagefill start examples/backfill-orders-total.yaml', 'stagefill start rollout.yaml --wait')),
).action(async (file: string, opts: ConnectOptions & { wait?: boolean; restart?: boolean }) => {
  const spec = loadSpecFile(file);
  await withConnection(opts, async (conn) => {
    if (spec.kind !== 'backfill') throw new UsageError(`kind: "${spec.kind}" runs are not available in this build`);
    const run = await startBackfill(conn, spec as BackfillSpec, { restart: opts.restart });
    print(run.workflowId);
    await reportContinuation(conn, run.workflowId);
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

for (const [verb, what] of [
  ['pause', 'pause a backfill after its in-flight chunks commit'],
  ['resume', 'resume a paused backfill or a held rollout step'],
  ['approve', "approve a rollout's approval step"],
  ['rollback', 'roll a rollout back to the state before it started'],
  ['retry', 'run the failed check of a held rollout again'],
] as const) {
  connectionOptions(
    program
      .command(verb)
      .description(what)
      .argument('<workflow-id>')
      .option('--by <who>', 'who is acting, for the audit trail (default: $STAGEFILL_ACTOR or user@host)')
      .option('--reason <text>', 'why, for the audit trail')
      .addHelpText('after', examples(`stagefill ${verb} stagefill-backfill:public.orders:total --reason "peak traffic"`)),
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
    .option('--json', 'machine-readable output')
    .addHelpText('after', examples('stagefill list --kind backfill --state running', 'stagefill list --table public.orders --json')),
).action(async (opts: ConnectOptions & { kind?: 'backfill' | 'rollout'; table?: string; state?: string; json?: boolean }) => {
  if (opts.kind && !['backfill', 'rollout'].includes(opts.kind)) throw new UsageError(`--kind: expected backfill or rollout, got "${opts.kind}"`);
  await withConnection(opts, async (conn) => {
    const runs = await listRuns(conn, { kind: opts.kind, table: opts.table, state: opts.state });
    if (opts.json) return print(JSON.stringify(runs, null, 2));
    if (!runs.length) return print('no runs match');
    for (const r of runs) print(`${r.workflowId}\t${r.kind ?? '?'}\t${(r.tables ?? []).join(',')}\t${r.state ?? '?'}\t${r.status}\t${r.startTime}`);
  });
});

connectionOptions(
  program
    .command('result')
    .description('wait for a run to close and print its result')
    .argument('<workflow-id>'),
).action(async (id: string, opts: ConnectOptions) => {
  await withConnection(opts, async (conn) => print(JSON.stringify(await waitForRun(conn, id), null, 2)));
});

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
  .description('run a local Temporal dev server (with the Web UI) and PostgreSQL until Ctrl-C; prints their addresses and writes .stagefill/dev.env')
  .option('--fresh', 'start with empty history and database')
  .addHelpText('after', examples('stagefill dev', 'source .stagefill/dev.env && temporal workflow list'))
  .action(async (opts: { fresh?: boolean }) => {
    const { runDev } = await import('./dev');
    process.exitCode = await runDev(opts);
  });

program
  .command('demo')
  .description('start the embedded stack and a worker, load a demo table of ~1M rows, run a staged rollout with a backfill on it')
  .option('--exit', 'stop everything after the run instead of keeping the stack up for the Web UI')
  .option('--rows <n>', 'rows in the demo table', toInt, 1_000_000)
  .addHelpText('after', examples('stagefill demo', 'stagefill demo --exit --rows 200000'))
  .action(async (opts: { exit?: boolean; rows: number }) => {
    const { runDemo } = await import('./demo');
    process.exitCode = await runDemo(opts);
  });

function toInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`expected a whole number, got "${v}"`);
  return n;
}

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
  if (err instanceof UsageError || err instanceof ConfigError) {
    process.stderr.write(`stagefill: ${err.message}\n`);
    return 2;
  }
  if (err instanceof AlreadyRunningError || err instanceof NotFoundError || err instanceof ConnectionError) {
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
