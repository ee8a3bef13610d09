import { Context, ApplicationFailure, sleep } from '@temporalio/activity';
import { inTransaction, openSession, Session, Queryable } from '../db/pool';
import * as sql from '../db/backfills';
import * as keys from '../db/key-chunks';
import type { KeyedTable } from '../db/key-sql';
import { evaluateExpect, describeExpect } from '../plan/expect';
import { isCutByArithmetic, arithmeticChunkEnd, leavesChanged } from '../plan/chunks';
import { adaptedChunkSize } from '../plan/throttle';
import { leaseGate } from './control';
import { KeyColumn, decodeKeyType, keyNames, formatKey, formatRange } from '../plan/keys';
import { classifyPgError, chunkFailure, CHUNK_VALIDATION_ERROR, SETUP_ERROR } from './errors';
import { ActivityDeps, LeaseInput, LeaseResult, WORKER_ID } from './backfill-types';

/**
 * The lease loop: one lane works one partition's chunks for a while, each
 * chunk with its checkpoint and the partition's cursor in one transaction,
 * on one connection, for every kind of key (one column of any ordered type,
 * or a composite key walked as a row value).
 */

/** A wait at least this long hands the lane's connection back to the pool. */
const LANE_KEEP_ACROSS_MS = 20;

/** A lease's hold on its partition: the connection, and the cursor it keeps between chunks. */
interface Lane {
  session: Session;
  /** Where the lane reads its cuts: the partition's leaf of a partitioned table, else the table. */
  source: KeyedTable;
  cursor: string;
  hi: string;
  isDone: boolean;
  fixedChunks: [string, string][] | null;
  isArithmetic: boolean;
  /** The next chunk's cut, from the last checkpoint statement; undefined: not known yet. */
  nextCut: string | null | undefined;
}

/** The checkpoint found the cursor moved: another lease committed this chunk first. */
class LaneRaced extends Error {
  constructor(readonly lo: string) {
    super(`partition cursor moved from ${lo} under this lease`);
  }
}

function setupFailure(message: string): ApplicationFailure {
  return ApplicationFailure.create({ message, type: SETUP_ERROR, nonRetryable: true });
}

function keyColumnsOf(input: Pick<LeaseInput, 'key' | 'keyType'>): KeyColumn[] {
  return decodeKeyType(input.keyType, keyNames(input.key));
}

export function createLeaseActivities({ pool, logger, metrics, faults }: ActivityDeps) {
  /**
   * Works one partition's chunks for up to `leaseMs`, each chunk and its
   * checkpoint in one transaction, on one connection held between waits: the
   * lane keeps the cursor and the next cut itself, so a chunk is four
   * statements (BEGIN, transform, checkpoint, COMMIT), as few as a plain loop.
   */
  async function runPartitionLease(leased: LeaseInput): Promise<LeaseResult> {
    const ctx = Context.current();
    const started = Date.now();
    let input = leased;
    const result: LeaseResult = {
      partitionNo: input.partitionNo,
      donePartitions: [],
      partitionDone: false,
      chunks: 0,
      rows: 0,
      sqlMs: 0,
      wallMs: 0,
      chunkSize: input.chunkSize,
      throttleWaitMs: 0,
      lockRetries: 0,
      stoppedBy: 'lease',
    };
    const labels = { kind: 'backfill', table: input.table };
    let nextHealthAt = 0;
    let lockFailures = 0;
    let cursor: string | undefined;
    let lane: Lane | undefined;
    // A beat every second whatever the lease is doing (a long chunk, a rate-limit wait), so a
    // worker that dies is noticed within the short heartbeat timeout, not the longest statement.
    const beat = setInterval(() => ctx.heartbeat({ partition: input.partitionNo, cursor }), 1000);
    const gate = input.control ? leaseGate(pool, { backfillId: input.backfillId, laneNo: input.control.laneNo }) : undefined;

    const leaveLane = async (isBroken = false) => {
      const l = lane;
      lane = undefined;
      await l?.session.close(isBroken);
    };
    const wait = async (ms: number) => {
      result.throttleWaitMs += ms;
      metrics?.throttleWaitSeconds.inc(labels, ms / 1000);
      ctx.heartbeat();
      // a waiting lane holds no connection: twenty throttled backfills share a small pool
      if (ms >= LANE_KEEP_ACROSS_MS) await leaveLane();
      await sleep(ms).catch(() => {}); // a cancellation ends the wait; the loop then stops
    };

    try {
      for (;;) {
        if (ctx.cancellationSignal.aborted) {
          result.stoppedBy = 'cancelled';
          break;
        }
        const now = Date.now();
        if (input.deadlineMs !== undefined && now >= input.deadlineMs) {
          result.stoppedBy = 'deadline';
          break;
        }
        if (now - started >= input.leaseMs) break;

        if (input.healthCheck && now >= nextHealthAt) {
          const value = await probeHealth(input.healthCheck.sql);
          nextHealthAt = Date.now() + input.healthCheck.everyMs;
          const isOver = value > input.healthCheck.max;
          // the workflow's state follows the last reading: backing_off while it is over
          result.health = { value, max: input.healthCheck.max, isOver, backoffMs: input.healthCheck.backoffMs, at: Date.now() };
          if (isOver) {
            logger.debug({ table: input.table, value, max: input.healthCheck.max }, 'health probe over threshold; backing off');
            nextHealthAt = 0;
            metrics?.lanesBackingOff?.inc(labels);
            try {
              await wait(input.healthCheck.backoffMs);
            } finally {
              metrics?.lanesBackingOff?.dec(labels);
            }
            metrics?.healthBackoffSeconds?.inc(labels, input.healthCheck.backoffMs / 1000);
            continue;
          }
        }

        // latency budget / replica lag: the probe's decision (activities/control.ts)
        const go = await gate?.beforeChunk();
        if (go?.stop) break;
        if (go?.waitMs) {
          await wait(go.waitMs);
          continue;
        }
        if (go?.chunkSize) result.chunkSize = go.chunkSize;

        let chunk: ChunkOutcome;
        try {
          lane ??= await enterLane(input, ctx.cancellationSignal);
          if (!lane) {
            result.stoppedBy = 'cancelled';
            break;
          }
          chunk = await applyChunk(lane, input, result.chunkSize);
        } catch (err) {
          const cls = err instanceof ApplicationFailure ? 'fatal' : classifyPgError(err);
          if (cls === 'lock' && lockFailures < 8) {
            // Live traffic holds a lock on these rows: back off, never queue behind it.
            lockFailures++;
            result.lockRetries++;
            const backoffMs = Math.min(5000, 100 * 2 ** lockFailures);
            // Best effort: the audit line must not turn a lock wait into a failed lease.
            await sql
              .recordEvent(pool, {
                workflowId: ctx.info.workflowExecution?.workflowId ?? '',
                kind: 'backfill',
                subject: `partition ${input.partitionNo}`,
                event: 'lock_timeout',
                detail: { retry: lockFailures, backoffMs, lockTimeoutMs: input.lockTimeoutMs, after: cursor ?? null },
              })
              .catch(() => {});
            await wait(backoffMs);
            continue;
          }
          // whatever failed may have left the session in doubt (a dead server, a stale prepared plan): never pool it again
          await leaveLane(true);
          if (cls === 'fatal' && !(err instanceof ApplicationFailure)) throw chunkFailure(err, '?', '?', 'transform');
          throw err; // transient: Temporal retries the lease with backoff, from the durable cursor
        }
        lockFailures = 0;
        if (chunk.kind === 'raced') {
          // another lease committed this range first (a worker presumed dead was not): ours rolled
          // back; read the partition again and go on from where the winner left it
          logger.warn(
            { table: input.table, partition: input.partitionNo, lo: chunk.lo },
            'partition moved under this lease; re-reading its cursor',
          );
          await leaveLane();
          continue;
        }
        if (chunk.kind === 'chunk') {
          faults?.afterChunkCommit?.({ partitionNo: input.partitionNo, lo: chunk.lo, hi: chunk.hi });
          result.chunks++;
          result.rows += chunk.rows;
          result.sqlMs += chunk.ms;
          result.chunkSize = chunk.nextSize;
          gate?.afterChunk(chunk.rows);
          metrics?.rowsProcessed.inc(labels, chunk.rows);
          metrics?.chunksCommitted.inc(labels);
          metrics?.chunkSeconds.observe(labels, chunk.ms / 1000);
          // the one-second beat reports it: a heartbeat per chunk cost the worker ~0.2 ms of CPU each
          cursor = chunk.hi;
          if (input.maxRowsPerSecond) {
            // Rate over the lease's wall time, waits included. Also after a partition's last chunk: the
            // lane's next lease starts a fresh clock, so a lease may not end ahead of its rate.
            const ahead = (result.rows / input.maxRowsPerSecond) * 1000 - (Date.now() - started);
            if (ahead > 0) await wait(ahead);
          }
        }
        if (chunk.kind === 'done' || chunk.isLast) {
          result.donePartitions!.push(input.partitionNo);
          if (input.thenPartitionNo !== undefined && Date.now() - started < input.leaseMs && !ctx.cancellationSignal.aborted) {
            // the partition reserved for this lane: no hand-off through the workflow (~30 ms a partition)
            input = { ...input, partitionNo: input.thenPartitionNo, thenPartitionNo: undefined };
            result.partitionNo = input.partitionNo;
            cursor = undefined;
            await leaveLane();
            continue;
          }
          result.partitionDone = true;
          result.stoppedBy = 'done';
          break;
        }
      }
    } finally {
      clearInterval(beat);
      await leaveLane();
    }
    result.wallMs = Date.now() - started;
    if (gate) result.control = gate.decision();
    return result;
  }

  /**
   * A connection for the lane, its timeouts set, and where the partition
   * stands. A pool busy with other lanes is waited out (the beat goes on),
   * not failed; undefined when the lease is cancelled meanwhile.
   */
  async function enterLane(input: LeaseInput, cancelled: AbortSignal): Promise<Lane | undefined> {
    let session: Session | undefined;
    while (!session) {
      if (cancelled.aborted) return undefined;
      session = await openSession(pool, sql.closeLane).catch((err: Error) => {
        if (/timeout exceeded when trying to connect/i.test(err.message)) return undefined;
        throw err;
      });
    }
    try {
      const p = await sql.openLane(session.client, { ...input, isCompositeKey: keyColumnsOf(input).length > 1 });
      const changed = leavesChanged(p.planned_leaves, p.leaves_now);
      if (changed)
        throw setupFailure(
          `table: partitions of ${input.table} changed during the backfill (${changed}); its key ranges no longer match its partitions. Start it again with --restart to plan over the partitions as they are now`,
        );
      const isArithmetic = isCutByArithmetic({
        keyType: input.keyType,
        isKeyUnique: input.isKeyUnique ?? false,
        lo: p.lo,
        hi: p.hi,
        rowsPlanned: Number(p.rows_planned),
      });
      const source = { table: p.leaf ?? input.table, cols: keyColumnsOf(input) };
      return {
        session,
        source,
        cursor: p.cursor,
        hi: p.hi,
        isDone: p.is_done,
        fixedChunks: p.fixed_chunks,
        isArithmetic,
        nextCut: undefined,
      };
    } catch (err) {
      await session.close();
      throw err;
    }
  }

  type ChunkOutcome =
    | { kind: 'done' }
    | { kind: 'raced'; lo: string }
    | { kind: 'chunk'; lo: string; hi: string; rows: number; ms: number; isLast: boolean; nextSize: number };

  async function applyChunk(lane: Lane, input: LeaseInput, size: number): Promise<ChunkOutcome> {
    if (lane.isDone) return { kind: 'done' };
    const t = lane.source;
    const n = t.cols.length;
    const lo = lane.cursor;
    const outcome = await inTransaction(lane.session.client, async (db): Promise<ChunkOutcome & { nextCut?: string | null }> => {
      const t0 = performance.now();
      let hi: string;
      if (lane.fixedChunks) {
        // a replay re-runs exactly the recorded ranges, which lie end to end
        const next = lane.fixedChunks.find(([flo]) => flo === lo);
        if (!next) return { kind: 'done' };
        hi = next[1];
      } else if (lane.isArithmetic) {
        hi = arithmeticChunkEnd(lo, lane.hi, size);
      } else {
        const cut = lane.nextCut !== undefined ? lane.nextCut : await keys.cutChunk(db, t, lo, lane.hi, size);
        hi = await endPastRun(db, t, input, lo, lane.hi, cut, size);
      }
      const isLast = hi === lane.hi;
      let rows: number;
      try {
        rows = (await keys.runRangeStatement(db, input.transform, t.cols, lo, hi)).rowCount;
      } catch (err) {
        throw classifyPgError(err) === 'fatal' ? chunkFailure(err, formatKey(lo, n), formatKey(hi, n), 'transform') : err;
      }
      for (const check of input.validate ?? []) {
        let value: unknown;
        try {
          value = (await keys.runRangeStatement(db, check.sql, t.cols, lo, hi)).value;
        } catch (err) {
          throw classifyPgError(err) === 'fatal' ? chunkFailure(err, formatKey(lo, n), formatKey(hi, n), `check "${check.name}"`) : err;
        }
        if (!evaluateExpect(Number(value), check.expect).ok) {
          throw ApplicationFailure.create({
            message: `chunk ${formatRange(lo, hi, n)} failed check "${check.name}": got ${String(value)}, expected ${describeExpect(check.expect)}`,
            type: CHUNK_VALIDATION_ERROR,
            nonRetryable: true,
            details: [{ lo, hi, check: check.name, value }],
          });
        }
      }
      const ms = performance.now() - t0;
      const nextSize =
        isLast || !input.targetChunkMs
          ? size
          : adaptedChunkSize(
              { targetChunkMs: input.targetChunkMs, minChunkSize: input.minChunkSize, maxChunkSize: input.maxChunkSize },
              size,
              ms,
            );
      const wantsCut = !isLast && !lane.fixedChunks && !lane.isArithmetic;
      const written = await sql.commitChunkCheckpoint(
        db,
        {
          backfillId: input.backfillId,
          generation: input.generation,
          partitionNo: input.partitionNo,
          lo,
          hi,
          isLast,
          rows,
          durationMs: ms,
          transformHash: input.transformHash,
          worker: WORKER_ID,
        },
        wantsCut ? { ...t, partitionHi: lane.hi, size: nextSize } : undefined,
      );
      // the cursor moved under us: roll the transform back (throwing is how inTransaction does that)
      if (!written.isWritten) throw new LaneRaced(lo);
      return { kind: 'chunk', lo, hi, rows, ms, isLast, nextSize, nextCut: wantsCut ? written.nextCut : undefined };
    }).catch((err: unknown) => {
      if (err instanceof LaneRaced) return { kind: 'raced' as const, lo };
      throw err;
    });
    if (outcome.kind === 'chunk') {
      // only now, committed: the lane's memory follows the database, never leads it
      lane.cursor = outcome.hi;
      lane.isDone = outcome.isLast;
      lane.nextCut = outcome.nextCut;
    }
    return outcome;
  }

  /**
   * The chunk's end from its cut. A cut at `lo` means more rows share the
   * value `lo` than `size`: with a chunk shrunk below the configured chunkSize
   * (targetChunkMs) it is cut again at chunkSize; a run longer than that is
   * refused, never run as a chunk over its size.
   */
  async function endPastRun(
    db: Queryable,
    t: KeyedTable,
    input: LeaseInput,
    lo: string,
    partitionHi: string,
    cut: string | null,
    size: number,
  ): Promise<string> {
    try {
      return keys.chunkEnd(lo, partitionHi, cut, size);
    } catch (err) {
      if (!(err instanceof keys.KeyRunTooLong)) throw err;
    }
    if (size < input.chunkSize) {
      const again = await keys.cutChunk(db, t, lo, partitionHi, input.chunkSize);
      if (again !== lo) return again ?? partitionHi;
    }
    const most = Math.max(size, input.chunkSize);
    throw ApplicationFailure.create({
      message:
        `key: more than ${most} rows share the key value ${formatKey(lo, t.cols.length)} of ${input.table}, so no chunk of at most ${most} rows can hold them. ` +
        `Key the backfill by more columns to make it unique (e.g. key: [${keyNames(input.key).join(', ')}, id]) or raise chunkSize`,
      type: SETUP_ERROR,
      nonRetryable: true,
      details: [{ lo, size: most }],
    });
  }

  async function probeHealth(probe: string): Promise<number> {
    return Number((await sql.queryScalar(pool, probe)) ?? 0);
  }

  return { runPartitionLease };
}
