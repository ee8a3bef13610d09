import { startBackfill } from '../client/operations';
import type { StagefillConnection } from '../client/connection';
import { parseBackfillSpec, parseRolloutSpec } from '../steps/spec';
import type { ChaosStack } from './stack';
import { plannedRun, type RunClass, type RunKind } from './schedule';
import { persist, startOnce, untilClosed, outcomeOf, countInto, liveWriter, noWrites, runRollout, type LiveCount } from './drive';
import { driveGraph } from './graph';
import { driveFleet } from './fleet';
import * as sql from './sql';

/**
 * The campaign's runs: backfills on integer, uuid and composite keys with a counter transform (n = n + 1); rollouts
 * (alterColumn, createIndex, addForeignKey, approval, contract) and rollout graphs across two tables (chaos/graph.ts)
 * that the campaign approves or rolls back as the seed says; fleets of one rollout over the campaign's tenant
 * databases (chaos/fleet.ts); each with a live writer on its tables while it runs. A run's driver starts it, answers
 * its approval and waits for it to close, riding out every fault by trying again. The n-th run of each class is the
 * seed's (chaos/schedule.ts plannedRun), whatever the timing.
 */

export { persist, type LiveCount } from './drive';
export { RUN_KINDS, type RunKind } from './schedule';

/** What a table looked like before a run: what a rollback must give back. */
export interface TableBefore {
  catalog: Record<string, unknown[]>;
  checksum: string;
}

export interface RunRecord {
  name: string;
  kind: RunKind;
  workflowId: string;
  table: string;
  parent?: string;
  rows: number;
  /** Seconds since the campaign began. */
  startedAt: number;
  endedAt?: number;
  /** completed, rolled_back, failed: <why>, or still running when the campaign gave up on it. */
  outcome?: string;
  /** The campaign's choice at the approval step (rollouts, graphs, fleets). */
  decision?: 'approve' | 'rollback';
  rollbackReason?: string | null;
  live: LiveCount;
  liveInserts: LiveCount;
  /** Graphs: live updates of the parent table. */
  liveParent?: LiveCount;
  signals: LiveCount;
  /** Fleets: each target's end as the fleet reports it, and its live updates. */
  targets?: { name: string; state: string; attempt: number; live: LiveCount }[];
  /** The rollout's table before it started: what a rollback must give back (scaledChecksum: what `up` makes of it). */
  before?: TableBefore & { scaledChecksum?: string; tables?: Record<string, TableBefore> };
}

export interface WorkloadOptions {
  rowsPerTable: number;
  /** The backfills' throttle, so a run lasts long enough for faults to land inside it. */
  maxRowsPerSecond: number;
  /** Pause between one live writer's writes. */
  liveWriteEveryMs: number;
}

export interface Workload {
  runs: RunRecord[];
  /** Starts the next run of `cls` (the seed's) and drives it to its end in the background. */
  start(cls: RunClass): Promise<RunRecord>;
  /** Runs started and not yet closed. */
  inFlight(): RunRecord[];
  /** Resolves when every run started so far has closed, or after `timeoutMs`. */
  settle(timeoutMs: number): Promise<void>;
  /** Gives up on the runs still open (they stay without an outcome: stuck) and stops their live writers. */
  stop(): Promise<void>;
}

/** What a run's driver gets. */
export interface DriveContext {
  stack: ChaosStack;
  conn: StagefillConnection;
  opts: WorkloadOptions;
  isStopping: () => boolean;
}

export const TABLE_PREFIX = 'chaos_';

export function classOf(kind: RunKind): RunClass {
  return kind.startsWith('backfill-') ? 'backfill' : (kind as RunClass);
}

export function createWorkload(stack: ChaosStack, conn: StagefillConnection, seed: number, opts: WorkloadOptions, t0: number): Workload {
  const runs: RunRecord[] = [];
  const drivers: Promise<void>[] = [];
  const now = () => (Date.now() - t0) / 1000;
  let seq = 0;
  const started: Record<RunClass, number> = { backfill: 0, rollout: 0, graph: 0, fleet: 0 };
  let isStopping = false;
  const ctx: DriveContext = { stack, conn, opts, isStopping: () => isStopping };

  function start(cls: RunClass): Promise<RunRecord> {
    const n = ++seq;
    const base = `${TABLE_PREFIX}${n}`;
    const { kind, decision, liveSeed } = plannedRun(seed, cls, started[cls]++);
    const tableOf: Record<RunKind, string> = {
      'backfill-int': `${base}_int`,
      'backfill-uuid': `${base}_uuid`,
      'backfill-composite': `${base}_composite`,
      rollout: `${base}_orders`,
      graph: `${base}_ledger`,
      fleet: `${base}_fleet`,
    };
    const rec: RunRecord = {
      name: `${base}_${kind}`,
      kind,
      workflowId: '',
      table: `public.${tableOf[kind]}`,
      rows: opts.rowsPerTable,
      startedAt: now(),
      decision,
      live: noWrites(),
      liveInserts: noWrites(),
      signals: noWrites(),
    };
    runs.push(rec);
    const drive = async () => {
      try {
        switch (kind) {
          case 'rollout':
            return await driveRollout(ctx, rec, base, decision!, liveSeed);
          case 'graph':
            return await driveGraph(ctx, rec, base, decision!, liveSeed);
          case 'fleet':
            return await driveFleet(ctx, rec, decision!, liveSeed);
          case 'backfill-int':
          case 'backfill-uuid':
          case 'backfill-composite':
            return await driveBackfill(ctx, rec, kind, liveSeed);
        }
      } finally {
        rec.endedAt = now();
      }
    };
    drivers.push(
      drive().catch((err) => {
        rec.outcome = `driver failed: ${(err as Error).message}`;
      }),
    );
    return Promise.resolve(rec);
  }

  return {
    runs,
    start,
    inFlight: () => runs.filter((r) => r.endedAt === undefined),
    async settle(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(drivers), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
      clearTimeout(timer);
    },
    async stop() {
      isStopping = true;
      await Promise.all(drivers);
    },
  };
}

async function driveBackfill(
  { stack, conn, opts, isStopping }: DriveContext,
  rec: RunRecord,
  kind: 'backfill-int' | 'backfill-uuid' | 'backfill-composite',
  liveSeed: number,
): Promise<void> {
  const key = kind.slice('backfill-'.length) as sql.KeyKind;
  await persist(() => sql.createCounterTable(stack.pool, rec.table, key, rec.rows));
  const spec = parseBackfillSpec({
    kind: 'backfill',
    name: rec.name,
    table: rec.table,
    key: key === 'composite' ? ['tenant_id', 'id'] : 'id',
    chunkSize: 250,
    parallelism: 2,
    throttle: { maxRowsPerSecond: opts.maxRowsPerSecond },
    transform: sql.counterTransform(rec.table, key),
  });
  const keys = await persist(() => sql.sampleKeys(stack.pool, rec.table, key, 200));
  const writer = liveWriter(liveSeed, opts.liveWriteEveryMs, (r) =>
    countInto(rec.live, () => sql.bumpLive(stack.pool, rec.table, key, r.pick(keys))),
  );
  try {
    rec.workflowId = await startOnce(() => startBackfill(conn, spec, { leaseMs: 2000, actor: 'chaos' }));
    const handle = conn.client.workflow.getHandle(rec.workflowId);
    if (await untilClosed(handle, isStopping)) rec.outcome = await persist(() => outcomeOf(handle, rec));
  } finally {
    await writer.stop();
  }
}

async function driveRollout(
  { stack, conn, opts, isStopping }: DriveContext,
  rec: RunRecord,
  base: string,
  decision: 'approve' | 'rollback',
  liveSeed: number,
): Promise<void> {
  rec.parent = `public.${base}_customers`;
  await persist(() => sql.createRolloutTables(stack.pool, rec.parent!, rec.table, rec.rows, 100));
  rec.before = {
    catalog: await persist(() => sql.catalogOf(stack.pool, rec.table)),
    checksum: await persist(() => sql.orderChecksum(stack.pool, rec.table, rec.rows, 1)),
    scaledChecksum: await persist(() => sql.orderChecksum(stack.pool, rec.table, rec.rows, 10)),
  };
  const spec = parseRolloutSpec({
    kind: 'rollout',
    name: rec.name,
    table: rec.table,
    rollbackWindow: '1s',
    steps: [
      {
        id: 'qty',
        kind: 'alterColumn',
        column: 'qty',
        newType: 'bigint',
        up: 'qty::bigint * 10',
        down: '(qty / 10)::int',
        backfill: { chunkSize: 200 },
      },
      { id: 'by_customer', kind: 'createIndex', columns: ['customer_id'] },
      { id: 'customer', kind: 'addForeignKey', columns: ['customer_id'], references: { table: rec.parent, columns: ['id'] } },
      { id: 'ok', kind: 'approval', timeout: '2h' },
      { id: 'contract', kind: 'contract' },
    ],
  });
  let nextId = rec.rows;
  const writer = liveWriter(liveSeed, opts.liveWriteEveryMs, async (r) => {
    if (r.chance(0.3)) {
      const id = ++nextId;
      await countInto(rec.liveInserts, () => sql.insertLiveOrder(stack.pool, rec.table, id, r.int(1, 100)));
    } else {
      const id = r.int(1, rec.rows);
      await countInto(rec.live, () => sql.hitOrder(stack.pool, rec.table, id));
    }
  });
  await runRollout(conn, spec, rec, decision, isStopping, writer);
}
