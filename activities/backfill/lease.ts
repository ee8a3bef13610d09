import { Context, ApplicationFailure, sleep } from '@temporalio/activity';
import * as sql from '../../db/backfill/backfills';
import { leaseGate } from './control';
import { databaseNowMs } from '../../db/clock';
import { chunkSizeInForce } from '../../core/backfill/throttle';
import { classifyPgError, chunkFailure } from '../../db/errors';
import type { ActivityDeps, LeaseInput, LeaseResult } from './types';
import type { Lane } from './lane';
import { enterLane } from './lane';
import type { ChunkOutcome } from './chunk';
import { applyChunk } from './chunk';

/**
 * The lease loop: one lane works one partition's chunks for a while, each
 * chunk with its checkpoint and the partition's cursor in one transaction,
 * on one connection, for every kind of key (one column of any ordered type,
 * or a composite key walked as a row value). Here the loop: when to stop,
 * health and throttle waits, lock backoff, races, the partition reserved
 * next; a lane's connection in lane.ts, one chunk's transaction in chunk.ts.
 */

/** A wait at least this long hands the lane's connection back to the pool. */
const LANE_KEEP_ACROSS_MS = 20;

export function createLeaseActivities({ pool, logger, metrics, faults }: ActivityDeps) {
  /**
   * Works one partition's chunks for up to `leaseMs`, each chunk and its
   * checkpoint in one transaction, on one connection held between waits: the
   * lane keeps the cursor and the next cut itself, so a chunk is four
   * statements (BEGIN, transform, checkpoint, COMMIT), as few as a plain loop.
   */
  async function runPartitionLease(leased: LeaseInput): Promise<LeaseResult> {
    // size: the lease loop: waits, lock backoff and races share one connection and cursor; left whole in #31's pass (a candidate to split)
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
    // the deadline is a time of the workflow's clock (the Temporal server's): compared with the database's clock, never
    // with this worker's own, which may drift (a worker ten minutes behind worked its whole lease past a window's close)
    const clockOffsetMs = input.deadlineMs === undefined ? 0 : (await databaseNowMs(pool)) - Date.now();
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
        if (input.deadlineMs !== undefined && now + clockOffsetMs >= input.deadlineMs) {
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

        // latency budget / replica lag: the probe's decision (activities/backfill/control.ts)
        const go = await gate?.beforeChunk();
        if (go?.stop) break;
        if (go?.waitMs) {
          await wait(go.waitMs);
          continue;
        }
        result.chunkSize = chunkSizeInForce(result.chunkSize, go, gate !== undefined);

        let chunk: ChunkOutcome;
        try {
          lane ??= await enterLane(pool, input, ctx.cancellationSignal);
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

  async function probeHealth(probe: string): Promise<number> {
    return Number((await sql.queryScalar(pool, probe)) ?? 0);
  }

  return { runPartitionLease };
}
