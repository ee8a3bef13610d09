import type { Pool } from 'pg';
import type { WorkflowHandle } from '@temporalio/client';
import { startBackfill, waitForRun } from '../client/operations';
import type { StagefillConnection } from '../client/connection';
import type { BackfillProgress } from '../workflows/definitions';
import { progressQuery } from '../workflows/definitions';
import * as sql from './sql';
import type { KeyTable } from './keys';
import { singleUpdateOn, transformOn } from './keys';
import { backfillSpec } from '../core/common/fields';

/** What one contender's run produced. Times in milliseconds. */
export interface FillRun {
  wallMs: number;
  rows: number;
  chunks: number;
  /** Lanes the chunks ran on (1 for the single statement and naive chunks). */
  lanes: number;
  /** Summed time of the chunks' SQL: the UPDATE alone for the plain loops, stagefill's in-transaction time for stagefill. */
  chunkSqlMs: number;
  /** The most rows one of stagefill's chunks held (its checkpoints). */
  largestChunk?: number;
  stagefill?: StagefillFacts;
  /** Cores' worth of CPU other work on the machine used during the run (set by the runner). */
  otherCores?: number;
}

export interface StagefillFacts {
  workflowId: string;
  /** Runs in the continue-as-new chain and their history events, summed. */
  runs: number;
  historyEvents: number;
  /** Events of the longest single run of the chain (absent in older results). */
  longestRunEvents?: number;
  activeMs: number;
  progressChunkSqlMs: number;
  workerPeakRssMb: number;
}

export interface Contender {
  /** Short label for tables. */
  id: string;
  title: string;
  run(tag: number): Promise<FillRun>;
}

export interface ContenderDeps {
  pool: Pool;
  conn: StagefillConnection;
  key: { from: number; to: number };
  workerPeakRssMb(): number;
  /** throttle.flushAfterKb of every stagefill run; bare chunks set the same backend_flush_after (0: the server's). */
  flushAfterKb: number;
}

export function singleStatement(d: ContenderDeps, on?: KeyTable): Contender {
  return {
    id: 'single',
    title: 'single UPDATE',
    async run(tag) {
      const t0 = performance.now();
      const rows = on ? await singleUpdateOn(d.pool, on, tag) : await sql.singleUpdate(d.pool, tag);
      const wallMs = performance.now() - t0;
      return { wallMs, rows, chunks: 1, lanes: 1, chunkSqlMs: wallMs };
    },
  };
}

/** Consecutive key ranges of `size`, autocommit, on one connection. */
export function naiveChunks(d: ContenderDeps, size = 10_000): Contender {
  return {
    id: 'naive',
    title: `naive ${fmtK(size)} chunks, 1 lane`,
    async run(tag) {
      const db = await d.pool.connect();
      try {
        const t0 = performance.now();
        let rows = 0;
        let chunks = 0;
        let sqlMs = 0;
        for (let lo = d.key.from; lo < d.key.to; lo += size) {
          const s = performance.now();
          rows += await sql.updateRange(db, tag, lo, Math.min(d.key.to, lo + size));
          sqlMs += performance.now() - s;
          chunks++;
        }
        return { wallMs: performance.now() - t0, rows, chunks, lanes: 1, chunkSqlMs: sqlMs };
      } finally {
        db.release();
      }
    },
  };
}

/**
 * The floor for any orchestrated backfill: `lanes` loops over contiguous
 * slices of the key, each chunk and its checkpoint row in one transaction,
 * both statements prepared once per connection as stagefill's are.
 * `commits: 'like-stagefill'` skips the WAL flush on every commit but each
 * lane's last, as stagefill does; 'durable' waits for it on every chunk.
 * Both write back as stagefill's lanes do (backend_flush_after).
 */
export function bareChunks(
  d: ContenderDeps,
  o: { id: string; size: number; lanes: number; commits: 'like-stagefill' | 'durable' },
): Contender {
  const { id, size, lanes } = o;
  return {
    id,
    title: `bare chunks ${fmtK(size)} × ${lanes} lanes${o.commits === 'durable' ? ', every commit durable' : ''}`,
    async run(tag) {
      const runId = `bare-${tag}`;
      const span = Math.ceil((d.key.to - d.key.from) / lanes);
      const t0 = performance.now();
      const perLane = await Promise.all(
        Array.from({ length: lanes }, async (_, i) => {
          const from = d.key.from + i * span;
          const to = Math.min(d.key.to, from + span);
          const db = await d.pool.connect();
          let rows = 0;
          let chunks = 0;
          let sqlMs = 0;
          try {
            if (d.flushAfterKb > 0) await db.query(`SELECT set_config('backend_flush_after', $1, false)`, [`${d.flushAfterKb}kB`]);
            for (let lo = from; lo < to; lo += size) {
              const hi = Math.min(to, lo + size);
              await db.query('BEGIN');
              const s = performance.now();
              const n = await sql.updateRange(db, tag, lo, hi, true);
              const ms = performance.now() - s;
              await sql.insertCheckpoint(db, { run: runId, lo, hi, rows: n, ms, isAsync: o.commits === 'like-stagefill' && hi < to });
              await db.query('COMMIT');
              rows += n;
              sqlMs += ms;
              chunks++;
            }
          } catch (err) {
            await db.query('ROLLBACK').catch(() => {});
            throw err;
          } finally {
            await db.query('RESET backend_flush_after').catch(() => {});
            db.release();
          }
          return { rows, chunks, sqlMs };
        }),
      );
      const wallMs = performance.now() - t0;
      return {
        wallMs,
        rows: perLane.reduce((s, l) => s + l.rows, 0),
        chunks: perLane.reduce((s, l) => s + l.chunks, 0),
        lanes,
        chunkSqlMs: perLane.reduce((s, l) => s + l.sqlMs, 0),
      };
    },
  };
}

/**
 * Not a backfill: the least a backfill of this table must ask of the machine
 * while live traffic runs, as pure CPU with no writes, no locks and no WAL.
 * Filling the table takes about `workMs` of one backend's time (the single
 * UPDATE alone); a backfill allowed `allowedMs` must keep workMs / allowedMs of
 * a core busy the whole time. This runs one connection at that duty cycle, in
 * bursts of about 2 ms, for allowedMs. If the load's p99 misses its target
 * beside this, no backfill that finishes in time can meet it on this machine.
 */
export function cpuFloor(d: ContenderDeps, o: { workMs: () => number; allowedMs: () => number }): Contender {
  return {
    id: 'cpu-floor',
    title: "CPU floor: the fill's CPU, no writes (1 lane)",
    async run() {
      const db = await d.pool.connect();
      try {
        const loops = await sql.calibrateBurn(db, 2);
        const allowedMs = o.allowedMs();
        const duty = Math.min(1, o.workMs() / allowedMs);
        const t0 = performance.now();
        let busyMs = 0;
        let bursts = 0;
        while (performance.now() - t0 < allowedMs) {
          const s = performance.now();
          await sql.burn(db, loops);
          busyMs += performance.now() - s;
          bursts++;
          const ahead = busyMs / duty - (performance.now() - t0);
          if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
        }
        return { wallMs: performance.now() - t0, rows: 0, chunks: bursts, lanes: 1, chunkSqlMs: busyMs };
      } finally {
        db.release();
      }
    },
  };
}

/** The real thing: the backfill workflow on the worker process, started and awaited as a client would. */
export function stagefillBackfill(
  d: ContenderDeps,
  o: {
    id: string;
    title: string;
    chunkSize: number;
    parallelism: number;
    maxRowsPerSecond?: number;
    range?: { from: number; to: number };
    on?: KeyTable;
    /** More of the spec's throttle (a latency budget). */
    throttle?: Record<string, unknown>;
    /** Terminate the run and fail the benchmark after this long (a budgeted run that crawls must not hold the bench for hours). */
    deadlineMs?: number;
  },
): Contender {
  return {
    id: o.id,
    title: o.title,
    async run(tag) {
      const spec = backfillSpec.parse({
        kind: 'backfill',
        name: `bench-${o.id}-${tag}`,
        table: o.on?.table ?? sql.TABLE,
        key: o.on?.key ?? sql.KEY,
        chunkSize: o.chunkSize,
        parallelism: o.parallelism,
        range: o.range,
        throttle: { flushAfterKb: d.flushAfterKb, ...(o.maxRowsPerSecond ? { maxRowsPerSecond: o.maxRowsPerSecond } : {}), ...o.throttle },
        transform: o.on ? transformOn(o.on, tag) : sql.stagefillTransform(tag),
      });
      const workflowId = stagefillWorkflowId(o.id, tag);
      const t0 = performance.now();
      const started = await startBackfill(d.conn, spec, { workflowId });
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        if (o.deadlineMs === undefined) return;
        timer = setTimeout(() => {
          void d.conn.client.workflow
            .getHandle(workflowId)
            .terminate(`benchmark deadline of ${Math.round(o.deadlineMs! / 1000)} s`)
            .catch(() => undefined);
          reject(new Error(`${o.title} (${workflowId}) did not finish within ${Math.round(o.deadlineMs! / 1000)} s; terminated`));
        }, o.deadlineMs);
      });
      try {
        await Promise.race([
          waitForRun(d.conn, workflowId).catch((err: Error) => {
            throw new Error(`${o.title} (${workflowId}) failed: ${rootCause(err)}`);
          }),
          deadline,
        ]);
      } finally {
        clearTimeout(timer);
      }
      const wallMs = performance.now() - t0;
      const progress = (await d.conn.client.workflow.getHandle(workflowId).query(progressQuery)) as BackfillProgress;
      const totals = await sql.stagefillChunkTotals(d.pool, workflowId);
      const history = await historyOfChain(d.conn, workflowId, started.runId);
      return {
        wallMs,
        rows: totals.rows,
        chunks: totals.chunks,
        lanes: o.parallelism,
        chunkSqlMs: totals.sqlMs,
        largestChunk: totals.largest,
        stagefill: {
          workflowId,
          runs: history.runs,
          historyEvents: history.events,
          longestRunEvents: history.longest,
          activeMs: progress.activeMs,
          progressChunkSqlMs: progress.chunkSqlMs,
          workerPeakRssMb: d.workerPeakRssMb(),
        },
      };
    },
  };
}

/** The workflow id of a stagefill contender's run, so a watcher can follow it while it runs. */
export function stagefillWorkflowId(id: string, tag: number): string {
  return `bench:${id}:${tag}:${process.pid}`;
}

/** Every run from the first through its continue-as-new successors, with their history lengths. */
async function historyOfChain(
  conn: StagefillConnection,
  workflowId: string,
  firstRunId: string,
): Promise<{ runs: number; events: number; longest: number }> {
  let runId: string | undefined = firstRunId;
  let runs = 0;
  let events = 0;
  let longest = 0;
  while (runId) {
    const history: Awaited<ReturnType<WorkflowHandle['fetchHistory']>> = await conn.client.workflow
      .getHandle(workflowId, runId)
      .fetchHistory();
    const list = history.events ?? [];
    runs++;
    events += list.length;
    longest = Math.max(longest, list.length);
    runId = list[list.length - 1]?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return { runs, events, longest };
}

function rootCause(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e?.cause) e = e.cause;
  return e?.message ?? String(err);
}

export function fmtK(n: number): string {
  return n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n);
}
