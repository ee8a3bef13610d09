import type { Command } from 'commander';
import { Option } from 'commander';
import { loadSpecFile } from './spec-load';
import { createPool } from '../db/pool';
import type { ConnectOptions, StagefillConnection } from './connection';
import { startRun, replayBackfill } from './runs';
import { getProgress, listRuns, waitForRun } from './operations';
import { planWithRefusal, backfillRefusalBeforeStart } from './plan-output';
import { refusalBeforeStart } from './contract-plan';
import { watchRun, formatStatus } from './watch';
import { readHistory, formatHistory } from './history';
import { NotFoundError, UsageError, RolloutRefusedError, BackfillRefusedError } from './errors';
import { connectionOptions, withConnection, print, printJson, examples, toInt, JSON_HELP } from './cli-common';
import { loadFleetSpecFile } from './fleet/spec-load';
import { planFleetWithRefusal } from './fleet/plan';
import { startFleet } from './fleet/start';
import { resolveFleetSpec } from './fleet/resolve';
import { askWorkers } from './fleet/targets';
import { readFleetHistory, formatFleetHistory } from './fleet/history';
import { FLEET_ID_PREFIX } from '../core/fleet/ids';
import { withTargetFigures } from './fleet/status';
import type { FleetProgress } from '../core/fleet/progress';

/** The verbs that start, follow and read runs: plan, start, status, watch, replay, list, result, history. */
export function registerRunVerbs(program: Command): void {
  // size: commander's table of verbs, one .command() chain each, in the order --help lists them
  connectionOptions(
    program
      .command('plan')
      .description(
        "validate a spec and print what it will do (chunk plan, steps, rollback, window) without changing anything; with DATABASE_URL, a spec the tables say cannot run is refused (exit 2): a backfill's missing table or key column, a rollout's missing table, a key changed without every column referencing it or a child table's contract, an index that cannot take a column's new type",
      )
      .argument('<spec>', 'YAML or JSON spec file')
      .option('--format <format>', 'text | json | mermaid', 'text')
      .option('--json', 'same as --format json')
      .addOption(
        new Option(
          '--targets <file>',
          'a fleet: the targets file to plan over (read from here); without it, every worker process on the task queue is asked what it serves',
        ).env('STAGEFILL_TARGETS'),
      )
      .addHelpText(
        'after',
        examples(
          'stagefill plan examples/backfill-orders-total.yaml',
          'stagefill plan examples/fleet-orders-cents.yaml --targets targets.yaml',
          'stagefill plan examples/fleet-orders-cents.yaml --task-queue stagefill',
          'stagefill plan rollout.yaml --format mermaid',
          'stagefill plan rollout.yaml --json',
        ),
      ),
  ).action(async (file: string, opts: ConnectOptions & { format: string; json?: boolean; targets?: string }) => {
    const format = opts.json ? 'json' : opts.format;
    if (!['text', 'json', 'mermaid'].includes(format)) throw new UsageError(`--format: expected text, json or mermaid, got "${format}"`);
    // kind: fleet: the waves over the targets file's targets, each target's table shape checked
    const fleet = loadFleetSpecFile(file);
    const spec = fleet ? fleet.change : loadSpecFile(file);
    const { text, refusal } = fleet
      ? opts.targets
        ? await planFleetWithRefusal(fleet, format as 'text' | 'json' | 'mermaid', opts.targets)
        : await withConnection(opts, (conn) => planFleetWithRefusal(fleet, format as 'text' | 'json' | 'mermaid', undefined, conn))
      : await planWithRefusal(spec, format as 'text' | 'json' | 'mermaid');
    print(text);
    if (refusal) throw spec.kind === 'backfill' ? new BackfillRefusedError(refusal) : new RolloutRefusedError(refusal);
  });

  connectionOptions(
    program
      .command('start')
      .description(
        'start a backfill, rollout or fleet from a spec file and print its workflow id; with DATABASE_URL, a spec the tables say cannot run (as `plan` lists) is refused (exit 2) before anything starts',
      )
      .argument('<spec>', 'YAML or JSON spec file')
      .option('--wait', 'follow it to the end; the exit code is its outcome')
      .option('--restart', 'backfill: start a new generation instead of continuing from checkpoints')
      .addOption(
        new Option(
          '--targets <file>',
          "a fleet with targets.query: a targets file to check the query's names against (without it, against what every worker process on the task queue serves)",
        ).env('STAGEFILL_TARGETS'),
      )
      .option(
        '--json',
        `${JSON_HELP}: {workflowId, runId, kind, name} (kind: backfill, rollout or fleet); with --wait the progress goes to stderr`,
      )
      .addHelpText(
        'after',
        examples(
          'stagefill start examples/backfill-orders-total.yaml',
          'stagefill start examples/add-computed-column.yaml --wait',
          'stagefill start examples/backfill-orders-total.yaml --json',
          'stagefill start examples/fleet-orders-cents.yaml',
        ),
      ),
  ).action(async (file: string, opts: ConnectOptions & { wait?: boolean; restart?: boolean; json?: boolean; targets?: string }) => {
    const loaded = loadFleetSpecFile(file);
    // targets.query: run against the catalog now, the workflow gets the names it returned
    if (loaded)
      return withConnection(opts, async (conn) => {
        const fleet = await resolveFleetSpec(loaded, {
          file: opts.targets,
          workers: async () => (await askWorkers(conn, {})).targets,
        });
        const run = await startFleet(conn, fleet);
        printStarted(run.workflowId, opts, { workflowId: run.workflowId, runId: run.runId, kind: 'fleet', name: fleet.name });
        await followIfWaiting(conn, run.workflowId, opts);
      });
    const spec = loadSpecFile(file);
    // read from the tables when DATABASE_URL is set (the rollout's steps and the backfill's prepare check the same again)
    if (spec.kind === 'rollout') {
      const refusal = await refusalBeforeStart(spec);
      if (refusal) throw new RolloutRefusedError(refusal);
    } else {
      const refusal = await backfillRefusalBeforeStart(spec);
      if (refusal) throw new BackfillRefusedError(refusal);
    }
    await withConnection(opts, async (conn) => {
      const run = await startRun(conn, spec, { restart: opts.restart });
      printStarted(run.workflowId, opts, { workflowId: run.workflowId, runId: run.runId, kind: spec.kind, name: spec.name });
      if (spec.kind === 'backfill') await reportContinuation(conn, run.workflowId);
      await followIfWaiting(conn, run.workflowId, opts);
    });
  });

  connectionOptions(
    program
      .command('status')
      .description("print a run's progress: state, chunks, rows, rate, ETA, steps")
      .argument('<workflow-id>')
      .option(
        '--json',
        `${JSON_HELP}: the progress query's object plus workflowStatus (a fleet's also rows, etaSeconds and held: the running targets held with their causes, asked of its running targets)`,
      )
      .addHelpText(
        'after',
        examples('stagefill status stagefill-backfill:public.orders:total --json', 'stagefill status stagefill-fleet:orders-cents'),
      ),
  ).action(async (id: string, opts: ConnectOptions & { json?: boolean }) => {
    await withConnection(opts, async (conn) => {
      const p = await getProgress(conn, id);
      if (p.kind === 'fleet') await withTargetFigures(conn, p as unknown as FleetProgress);
      print(opts.json ? JSON.stringify(p, null, 2) : formatStatus(p));
    });
  });

  connectionOptions(
    program
      .command('watch')
      .description('follow a run with a live progress bar; exits with its outcome (0 completed, 1 failed or rolled back)')
      .argument('<workflow-id>')
      .option('--json', 'JSON Lines: each changed progress object, then {workflowId, state, workflowStatus, exitCode}')
      .addHelpText(
        'after',
        examples('stagefill watch stagefill-backfill:public.orders:total', 'stagefill watch stagefill-rollout:orders-total --json'),
      ),
  ).action(async (id: string, opts: ConnectOptions & { json?: boolean }) => {
    await withConnection(opts, async (conn) => {
      process.exitCode = await watchRun(conn, id, { bar: Boolean(process.stdout.isTTY), json: opts.json });
    });
  });

  connectionOptions(
    program
      .command('replay')
      .description(
        're-run the chunks of a completed backfill that cover [from, to), exactly once more, as a new generation of checkpoints (the earlier generation stays for audit)',
      )
      .argument('<name>', "the backfill's name, as in its spec")
      .requiredOption('--from <key>', 'start of the key range (inclusive); a composite key as a tuple, e.g. "(3, 1200)"')
      .requiredOption('--to <key>', 'end of the key range (exclusive); a composite key as a tuple')
      .option('--table <table>', 'schema.table, when backfills of that name exist on several tables')
      .option('--wait', 'follow it to the end; the exit code is its outcome')
      .option('--json', `${JSON_HELP}: {workflowId, runId, kind, name, table}`)
      .addOption(
        new Option('--database-url <url>', 'the database the backfill changed (its checkpoints and spec live there)').env('DATABASE_URL'),
      )
      .addHelpText(
        'after',
        examples(
          'stagefill replay orders-total --from 2026-03-01 --to 2026-03-08 --wait',
          'stagefill replay orders-total --from 500000 --to 600000 --table public.orders',
        ),
      ),
  ).action(
    async (
      name: string,
      opts: ConnectOptions & { from: string; to: string; table?: string; wait?: boolean; json?: boolean; databaseUrl?: string },
    ) => {
      if (!opts.databaseUrl)
        throw new UsageError('--database-url: not set; pass it or set DATABASE_URL to the database the backfill changed');
      await withConnection(opts, async (conn) => {
        const run = await replayBackfill(conn, opts.databaseUrl!, name, { from: opts.from, to: opts.to, table: opts.table });
        printStarted(run.workflowId, opts, { workflowId: run.workflowId, runId: run.runId, kind: 'backfill', name, table: run.table });
        await followIfWaiting(conn, run.workflowId, opts);
      });
    },
  );

  connectionOptions(
    program
      .command('list')
      .description('list backfills, rollouts and fleets, filtered through their search attributes')
      .option('--kind <kind>', 'backfill | rollout | fleet')
      .option('--fleet <name>', "a fleet's name: the fleet and its targets' rollouts or backfills (StagefillFleet)")
      .option('--table <table>', 'schema.table')
      .option(
        '--state <state>',
        'running (every run still running, whatever it waits for), or one state: backing_off, holding, waiting_window, waiting_approval, paused, held, failed, rolled_back, ...',
      )
      .option('--limit <n>', 'at most this many, newest first', toInt, 100)
      .option('--json', `${JSON_HELP}: an array of {workflowId, runId, type, status, kind, tables, state, fleet?, startTime, closeTime}`)
      .addHelpText(
        'after',
        examples(
          'stagefill list --kind backfill --state running',
          'stagefill list --table public.orders --json',
          'stagefill list --kind fleet',
          'stagefill list --fleet orders-cents',
        ),
      ),
  ).action(
    async (
      opts: ConnectOptions & {
        kind?: 'backfill' | 'rollout' | 'fleet';
        fleet?: string;
        table?: string;
        state?: string;
        limit: number;
        json?: boolean;
      },
    ) => {
      if (opts.kind && !['backfill', 'rollout', 'fleet'].includes(opts.kind))
        throw new UsageError(`--kind: expected backfill, rollout or fleet, got "${opts.kind}"`);
      await withConnection(opts, async (conn) => {
        const runs = await listRuns(conn, {
          kind: opts.kind,
          fleet: opts.fleet,
          table: opts.table,
          state: opts.state,
          limit: opts.limit,
        });
        if (opts.json) return printJson(runs);
        if (!runs.length) return print('no runs match');
        for (const r of runs)
          print(
            `${r.workflowId}\t${r.kind ?? '?'}\t${(r.tables ?? []).join(',') || (r.fleet ? `fleet ${r.fleet}` : '-')}\t${r.state ?? '?'}\t${r.status}\t${r.startTime}`,
          );
      });
    },
  );

  connectionOptions(
    program
      .command('result')
      .description('wait for a run to close and print its result as JSON (exit 1 if it failed)')
      .argument('<workflow-id>')
      .option('--json', "accepted for symmetry: the result is always JSON (the workflow's result object)")
      .addHelpText('after', examples('stagefill result stagefill-backfill:public.orders:total')),
  ).action(async (id: string, opts: ConnectOptions) => {
    await withConnection(opts, async (conn) => printJson(await waitForRun(conn, id)));
  });

  program
    .command('history')
    .description(
      "print a run's audit trail from stagefill's tables (DATABASE_URL): events with actors; a backfill's generations and checkpoints; a rollout's steps and gate results; a fleet's (stagefill-fleet:<name>): each target's, read from the targets file's databases",
    )
    .argument('<workflow-id>')
    .addOption(new Option('--database-url <url>', 'the database stagefill changes (where its audit lives)').env('DATABASE_URL'))
    .addOption(new Option('--targets <file>', 'a fleet: the targets file the workers read').env('STAGEFILL_TARGETS'))
    .option(
      '--json',
      `${JSON_HELP}: {workflowId, events, backfill?, rollout?}; a fleet's: {workflowId, targets: [{target, ...}], untouched, unreadable}`,
    )
    .addHelpText(
      'after',
      examples(
        'stagefill history stagefill-backfill:public.orders:total',
        'stagefill history stagefill-rollout:orders-total --json',
        'stagefill history stagefill-fleet:orders-cents --targets targets.yaml',
      ),
    )
    .action(async (id: string, opts: { databaseUrl?: string; json?: boolean; targets?: string }) => {
      if (id.startsWith(FLEET_ID_PREFIX)) {
        const h = await readFleetHistory(id, opts.targets);
        if (!h.targets.length && !h.unreadable.length)
          throw new NotFoundError(
            `no target of ${opts.targets} has an audit of ${id}; check the id (\`stagefill list --kind fleet\`) and the targets file`,
          );
        print(opts.json ? JSON.stringify(h, null, 2) : formatFleetHistory(h));
        return;
      }
      if (!opts.databaseUrl)
        throw new UsageError(
          '--database-url: not set; pass it or set DATABASE_URL to the database the run changed (the audit lives there)',
        );
      const pool = createPool({ url: opts.databaseUrl, max: 1, applicationName: 'stagefill-history' });
      try {
        const h = await readHistory(pool, id);
        if (!h.events.length && !h.backfill && !h.rollout)
          throw new NotFoundError(`no audit for ${id} in this database; check the id (\`stagefill list\`) and DATABASE_URL`);
        print(opts.json ? JSON.stringify(h, null, 2) : formatHistory(h));
      } finally {
        await pool.end();
      }
    });
}

/** What start and replay print of the run they started: its workflow id, or with --json the object `json`. */
function printStarted(workflowId: string, opts: { json?: boolean }, json: object): void {
  print(opts.json ? JSON.stringify(json) : workflowId);
}

/** With --wait, follows the run to its end (progress to stderr under --json); the exit code is its outcome. */
async function followIfWaiting(conn: StagefillConnection, workflowId: string, opts: { wait?: boolean; json?: boolean }): Promise<void> {
  if (opts.wait) process.exitCode = await watchRun(conn, workflowId, { bar: false, out: opts.json ? process.stderr : process.stdout });
}

/** After a start, say whether checkpoints of an earlier run were picked up. */
async function reportContinuation(conn: StagefillConnection, workflowId: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const p = await getProgress<{ state: string; continued?: boolean; chunksDone?: number; chunksBefore?: number }>(conn, workflowId).catch(
      () => undefined,
    );
    if (p && p.state !== 'starting') {
      // what the checkpoints held when this run started, not what it has done since
      if (p.continued)
        process.stderr.write(
          `continuing from checkpoints: ${p.chunksBefore ?? p.chunksDone} chunks already done (use --restart to start over)\n`,
        );
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
