import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { startBackfill } from '../client/operations';
import { AlreadyRunningError } from '../client/errors';
import { startRollout } from '../client/runs';
import type { StagefillConnection } from '../client/connection';
import { parseBackfillSpec, parseRolloutSpec } from '../steps/spec';
import { progressQuery, approveSignal, rollbackSignal, type RolloutProgress } from '../workflows/definitions';
import { sleep } from '../devstack';
import type { ChaosStack } from './stack';
import { seeded, type Rng } from './rng';
import * as sql from './sql';

/**
 * The campaign's runs: backfills on integer, uuid and composite keys with a counter transform (n = n + 1), and
 * rollouts (alterColumn, createIndex, addForeignKey, approval, contract) that the campaign approves or rolls back as
 * the seed says; each with a live writer on its table while it runs. A run's driver starts it, answers its approval
 * and waits for it to close, riding out every fault by trying again.
 */

export type RunKind = 'backfill-int' | 'backfill-uuid' | 'backfill-composite' | 'rollout';
export const RUN_KINDS: readonly RunKind[] = ['backfill-int', 'backfill-uuid', 'backfill-composite', 'rollout'];

/** Writes a live writer made: acked ones committed; uncertain ones failed in a way that may have committed. */
export interface LiveCount {
  acked: number;
  uncertain: number;
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
  /** The campaign's choice at the approval step (rollouts). */
  decision?: 'approve' | 'rollback';
  rollbackReason?: string | null;
  live: LiveCount;
  liveInserts: LiveCount;
  signals: LiveCount;
  /** The rollout's table before it started: what a rollback must give back. */
  before?: { catalog: sql.Catalog; checksum: string; scaledChecksum: string };
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
  /** Starts a run of `kind` and drives it to its end in the background. */
  start(kind: RunKind): Promise<RunRecord>;
  /** Runs started and not yet closed. */
  inFlight(): RunRecord[];
  /** Resolves when every run started so far has closed, or after `timeoutMs`. */
  settle(timeoutMs: number): Promise<void>;
  /** Gives up on the runs still open (they stay without an outcome: stuck) and stops their live writers. */
  stop(): Promise<void>;
}

export const TABLE_PREFIX = 'chaos_';

export function createWorkload(stack: ChaosStack, conn: StagefillConnection, rng: Rng, opts: WorkloadOptions, t0: number): Workload {
  const runs: RunRecord[] = [];
  const drivers: Promise<void>[] = [];
  const now = () => (Date.now() - t0) / 1000;
  let seq = 0;
  const decisions: ('approve' | 'rollback')[] = [];
  let isStopping = false;

  function start(kind: RunKind): Promise<RunRecord> {
    const n = ++seq;
    const base = `${TABLE_PREFIX}${n}`;
    // drawn now, in the order runs start, so the seed decides it whatever the timing; in pairs (one approve and one
    // rollback in a seeded order), so even a campaign of two rollouts goes both ways
    if (kind === 'rollout' && !decisions.length)
      decisions.push(...(rng.chance(0.5) ? (['approve', 'rollback'] as const) : (['rollback', 'approve'] as const)));
    const decision = kind === 'rollout' ? decisions.shift()! : undefined;
    const liveSeed = rng.int(0, 2 ** 31);
    const rec: RunRecord = {
      name: `${base}_${kind}`,
      kind,
      workflowId: '',
      table: `public.${base}_${kind === 'rollout' ? 'orders' : kind.slice('backfill-'.length)}`,
      rows: opts.rowsPerTable,
      startedAt: now(),
      live: { acked: 0, uncertain: 0 },
      liveInserts: { acked: 0, uncertain: 0 },
      signals: { acked: 0, uncertain: 0 },
    };
    runs.push(rec);
    const driver = (kind === 'rollout' ? driveRollout(rec, base, decision!, liveSeed) : driveBackfill(rec, kind, liveSeed)).catch((err) => {
      rec.outcome = `driver failed: ${(err as Error).message}`;
      rec.endedAt = now();
    });
    drivers.push(driver);
    return Promise.resolve(rec);
  }

  async function driveBackfill(rec: RunRecord, kind: Exclude<RunKind, 'rollout'>, liveSeed: number): Promise<void> {
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
      rec.workflowId = await persist(async () => {
        try {
          return (await startBackfill(conn, spec, { leaseMs: 2000, actor: 'chaos' })).workflowId;
        } catch (err) {
          // a start that reached the server before the fault: it runs
          if (err instanceof AlreadyRunningError) return err.workflowId;
          throw err;
        }
      });
      const handle = conn.client.workflow.getHandle(rec.workflowId);
      if (await untilClosed(handle)) rec.outcome = await persist(() => outcomeOf(handle, rec));
    } finally {
      await writer.stop();
      rec.endedAt = now();
    }
  }

  async function driveRollout(rec: RunRecord, base: string, decision: 'approve' | 'rollback', liveSeed: number): Promise<void> {
    rec.parent = `public.${base}_customers`;
    rec.decision = decision;
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
    try {
      rec.workflowId = await persist(async () => {
        try {
          return (await startRollout(conn, spec, { actor: 'chaos' })).workflowId;
        } catch (err) {
          if (err instanceof AlreadyRunningError) return err.workflowId;
          throw err;
        }
      });
      const handle = conn.client.workflow.getHandle(rec.workflowId);
      const isClosed = await untilClosed(handle, async () => {
        if (rec.signals.acked > 0) return;
        const p = (await handle.query(progressQuery)) as RolloutProgress;
        if (p.state !== 'waiting_approval') return;
        await countInto(rec.signals, () =>
          decision === 'approve'
            ? handle.signal(approveSignal, { by: 'chaos' })
            : handle.signal(rollbackSignal, { by: 'chaos', reason: 'the campaign rolls back at approval' }),
        );
      });
      if (isClosed) rec.outcome = await persist(() => outcomeOf(handle, rec));
    } finally {
      await writer.stop();
      rec.endedAt = now();
    }
  }

  /**
   * Polls until the workflow has closed (true) or the campaign stops waiting (false), running `each` (e.g. the
   * approval) between polls; every error is a fault to wait out.
   */
  async function untilClosed(handle: WorkflowHandle, each?: () => Promise<void>): Promise<boolean> {
    while (!isStopping) {
      try {
        const d = await handle.describe();
        if (d.status.name !== 'RUNNING') return true;
        await each?.();
      } catch {
        // Temporal or every worker away: the run is still there when it comes back
      }
      await sleep(1000);
    }
    return false;
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

/** The closed workflow's outcome: completed, rolled_back (with why), or failed: <message>. */
async function outcomeOf(handle: WorkflowHandle, rec: RunRecord): Promise<string> {
  try {
    const result = (await handle.result()) as { state: string; rollbackReason?: string | null };
    rec.rollbackReason = result.rollbackReason ?? null;
    return result.state;
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const cause = err.cause as { message?: string; type?: string; details?: unknown[] } | undefined;
    const details = cause?.details?.[0] as { state?: string; rollbackReason?: string | null } | undefined;
    if (details?.state) {
      rec.rollbackReason = details.rollbackReason ?? null;
      return details.state;
    }
    return `failed: ${cause?.type ?? ''} ${cause?.message ?? err.message}`.trim();
  }
}

/** Runs `fn` until it succeeds: the stack may be mid-fault (PostgreSQL or Temporal down). Gives up after ~5 minutes. */
export async function persist<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 300) throw err;
      await sleep(1000);
    }
  }
}

/** Connection refused or not made: the write never reached the server, so it surely did not commit. */
function neverSent(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    e.code === 'ECONNREFUSED' ||
    /timeout exceeded when trying to connect|Connection terminated due to connection timeout/.test(e.message ?? '')
  );
}

async function countInto(count: LiveCount, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
    count.acked++;
  } catch (err) {
    if (!neverSent(err)) count.uncertain++;
  }
}

/** A loop of live writes (`write` counts each one) until stopped, one every ~`everyMs`. */
function liveWriter(seed: number, everyMs: number, write: (r: Rng) => Promise<void>): { stop(): Promise<void> } {
  // its own generator: how many writes land depends on timing, and must not shift the campaign's draws
  const r = seeded(seed);
  let isStopping = false;
  const loop = (async () => {
    while (!isStopping) {
      await write(r);
      await sleep(r.int(everyMs / 2, (everyMs * 3) / 2));
    }
  })();
  return {
    async stop() {
      isStopping = true;
      await loop;
    },
  };
}
