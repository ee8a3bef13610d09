import os from 'node:os';
import crypto from 'node:crypto';
import { Context, ApplicationFailure, sleep } from '@temporalio/activity';
import { Pool } from 'pg';
import type { Logger } from 'pino';
import { withTransaction, inTransaction, openSession, Session } from '../db/pool';
import * as sql from '../db/backfills';
import { evaluateExpect, Expectation, describeExpect } from '../plan/expect';
import { isCutByArithmetic, arithmeticChunkEnd, evenKeyPartitions } from '../plan/chunks';
import { classifyPgError, chunkFailure, CHUNK_VALIDATION_ERROR, SETUP_ERROR } from './errors';
// latency budget / replica lag (issue 19): the pure rules and the lease's gate live in their own files
import { adaptedChunkSize } from '../plan/throttle';
import type { ControlDecision } from '../plan/throttle-control';
import { leaseGate } from './control';

/** The counters activities feed; the worker's prom-client registry provides them. */
export interface ActivityMetrics {
  rowsProcessed: { inc(labels: Labels, v?: number): void };
  chunksCommitted: { inc(labels: Labels, v?: number): void };
  chunkSeconds: { observe(labels: Labels, v: number): void };
  throttleWaitSeconds: { inc(labels: Labels, v?: number): void };
  gateResults: { inc(labels: Labels & { check: string; result: string }, v?: number): void };
  gateDivergence: { set(labels: Labels & { check: string }, v: number): void };
  rollbacks: { inc(labels: Labels, v?: number): void };
}
type Labels = { kind: string; table: string };

export interface ActivityDeps {
  pool: Pool;
  logger: Logger;
  metrics?: ActivityMetrics;
  /** Fault injection for tests: runs right after a chunk's transaction committed. */
  faults?: { afterChunkCommit?: (chunk: { partitionNo: number; lo: string; hi: string }) => void };
}

export interface ChunkCheck {
  name: string;
  sql: string;
  expect: Expectation;
}

export interface PrepareBackfillInput {
  workflowId: string;
  table: string;
  name: string;
  key: string;
  transform: string;
  spec: unknown;
  parallelism: number;
  range?: { from?: string; to?: string };
  /** Start a new generation even when checkpoints exist. */
  restart?: boolean;
  /** Re-run the chunks of the current generation that cover [from, to) as a new generation. */
  replay?: { from: string; to: string };
}

export interface PreparedPartition {
  no: number;
  isDone: boolean;
}

export interface PreparedBackfill {
  backfillId: number;
  generation: number;
  keyType: string;
  isKeyUnique?: boolean;
  transformHash: string;
  partitions: PreparedPartition[];
  rowsTotal: number;
  rowsDone: number;
  chunksDone: number;
  /** Checkpoints of an earlier run were found and are kept. */
  continued: boolean;
  range: { from: string; to: string } | null;
}

export interface LeaseInput {
  backfillId: number;
  generation: number;
  partitionNo: number;
  table: string;
  key: string;
  keyType: string;
  /** A unique index on exactly the key: dense partitions are then cut by arithmetic. */
  isKeyUnique?: boolean;
  transform: string;
  transformHash: string;
  validate?: ChunkCheck[];
  chunkSize: number;
  minChunkSize: number;
  maxChunkSize: number;
  targetChunkMs?: number;
  /** This lane's share of the backfill's row rate limit. */
  maxRowsPerSecond?: number;
  healthCheck?: { sql: string; max: number; everyMs: number; backoffMs: number };
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  /** Return after about this long so the workflow sees progress. */
  leaseMs: number;
  /**
   * A partition reserved for this lane: when `partitionNo` is done with lease
   * time left, the lease goes on with it instead of returning for a hand-off
   * through the workflow.
   */
  thenPartitionNo?: number;
  /** Epoch ms after which no new chunk starts (a window's end). */
  deadlineMs?: number;
  /** Latency budget / replica lag: follow the probe's decisions (activities/control.ts); the lane's number among the lanes. */
  control?: { laneNo: number };
}

export interface LeaseResult {
  /** The partition the lease ended on (`thenPartitionNo` once it moved on). */
  partitionNo?: number;
  /** Every partition the lease finished, in order. */
  donePartitions?: number[];
  /** The partition it ended on is done. */
  partitionDone: boolean;
  chunks: number;
  rows: number;
  sqlMs: number;
  wallMs: number;
  chunkSize: number;
  throttleWaitMs: number;
  lockRetries: number;
  stoppedBy: 'done' | 'lease' | 'deadline' | 'cancelled';
  /** The probe's last decision this lease followed (with `control`). */
  control?: ControlDecision;
}

export const WORKER_ID = `${os.hostname()}:${process.pid}`;

/** A wait at least this long hands the lane's connection back to the pool. */
const LANE_KEEP_ACROSS_MS = 20;

/** A lease's hold on its partition: the connection, and the cursor it keeps between chunks. */
interface Lane {
  session: Session;
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

// targetChunkMs sizing is a pure rule: plan/throttle.ts
export { adaptedChunkSize };

export function hashTransform(transform: string): string {
  return crypto.createHash('sha256').update(transform).digest('hex').slice(0, 16);
}

function assertKeyType(keyType: string | undefined, table: string, key: string): string {
  if (!keyType) throw setupFailure(`key: column "${key}" does not exist on ${table}; name an integer, bigint, date or timestamp column`);
  if (!sql.KEY_TYPES.includes(keyType)) {
    throw setupFailure(`key: column "${key}" of ${table} is ${keyType}; a backfill key must be one of ${sql.KEY_TYPES.join(', ')}`);
  }
  return keyType;
}

function setupFailure(message: string): ApplicationFailure {
  return ApplicationFailure.create({ message, type: SETUP_ERROR, nonRetryable: true });
}

export function createBackfillActivities({ pool, logger, metrics, faults }: ActivityDeps) {
  async function prepareBackfill(input: PrepareBackfillInput): Promise<PreparedBackfill> {
    const transformHash = hashTransform(input.transform);
    return withTransaction(pool, async (db) => {
      await sql.lockBackfillName(db, input.table, input.name);
      const info = await sql.describeKey(db, input.table, input.key);
      if (!info.tableExists) throw setupFailure(`table: ${input.table} does not exist; create it or fix the spec's table`);
      const keyType = assertKeyType(info.keyType, input.table, input.key);
      if (!info.hasIndex) {
        throw setupFailure(
          `key: ${input.table} has no index that starts with "${input.key}"; every chunk would scan the table. ` +
            `Create one (CREATE INDEX CONCURRENTLY ON ${input.table} (${input.key})) or choose an indexed key`, // lint-layers: ok
        );
      }
      let row = await sql.findBackfill(db, input.table, input.name);
      if (!row) {
        row = await sql.insertBackfill(db, { ...input, keyType, transformHash });
      } else {
        await sql.updateBackfillSpec(db, row.id, { workflowId: input.workflowId, spec: input.spec, transformHash, keyType });
      }
      const backfillId = Number(row.id);
      let generation = row.generation;
      let continued = false;
      if (input.replay) {
        if (generation === 0) throw setupFailure(`replay: backfill ${input.name} on ${input.table} has never run; start it first`);
        const from = await sql.normalizeKey(db, keyType, input.replay.from);
        const to = await sql.normalizeKey(db, keyType, input.replay.to);
        const chunks = await sql.checkpointsInRange(db, backfillId, generation, keyType, from, to);
        if (!chunks.length) throw setupFailure(`replay: no chunk of generation ${generation} covers [${from}, ${to})`);
        const byPartition = new Map<number, sql.CheckpointRow[]>();
        for (const c of chunks) byPartition.set(c.partition_no, [...(byPartition.get(c.partition_no) ?? []), c]);
        const partitions = [...byPartition.values()].map((cs) => ({
          lo: cs[0].lo,
          hi: cs[cs.length - 1].hi,
          rows: cs.reduce((s, c) => s + Number(c.rows), 0),
          fixedChunks: cs.map((c) => [c.lo, c.hi] as [string, string]),
        }));
        generation += 1;
        await sql.insertGeneration(db, { backfillId, generation, reason: 'replay', from, to, transformHash, partitions });
      } else if (generation > 0 && !input.restart) {
        continued = true;
      } else {
        const extent = await sql.keyExtent(db, input.table, input.key, keyType);
        const range = extent && {
          from: input.range?.from !== undefined ? await sql.normalizeKey(db, keyType, input.range.from) : extent.from,
          to: input.range?.to !== undefined ? await sql.normalizeKey(db, keyType, input.range.to) : extent.to,
        };
        const parts = Math.max(1, input.parallelism * 4);
        let partitions: sql.PartitionBound[] = [];
        if (range && extent) {
          // the row estimate matters only for a unique key; partitionBounds reads it again otherwise
          const shape = { keyType, isKeyUnique: info.isUnique, lo: extent.from, hi: extent.to, rowsPlanned: info.isUnique ? await sql.estimatedRows(db, input.table) : 0 };
          partitions = isCutByArithmetic(shape)
            ? evenKeyPartitions(range.from, range.to, parts, shape.rowsPlanned / Number(BigInt(extent.to) - BigInt(extent.from)))
            : await sql.partitionBounds(db, input.table, input.key, keyType, range.from, range.to, parts);
        }
        generation += 1;
        await sql.insertGeneration(db, {
          backfillId,
          generation,
          reason: generation === 1 ? 'start' : 'restart',
          from: range?.from ?? '',
          to: range?.to ?? '',
          transformHash,
          partitions,
        });
      }
      await sql.setBackfillState(db, backfillId, 'running');
      const parts = await sql.listPartitions(db, backfillId, generation);
      const counters = await sql.backfillCounters(db, backfillId, generation);
      const gen = parts.length ? { from: parts[0].lo, to: parts[parts.length - 1].hi } : null;
      await sql.recordEvent(db, {
        workflowId: input.workflowId,
        kind: 'backfill',
        event: continued ? 'continued' : input.replay ? 'replay_started' : 'started',
        detail: { generation, transformHash, chunksDone: counters.chunksDone, rowsDone: counters.rowsDone, range: gen },
      });
      logger.info(
        { backfill: input.name, table: input.table, generation, transformHash, continued, chunksDone: counters.chunksDone },
        continued ? `continuing ${input.name} from its checkpoints (${counters.chunksDone} chunks done)` : `backfill ${input.name} planned`,
      );
      return {
        backfillId,
        generation,
        keyType,
        isKeyUnique: info.isUnique,
        transformHash,
        partitions: parts.map((p) => ({ no: p.partition_no, isDone: p.is_done })),
        rowsTotal: counters.rowsPlanned,
        rowsDone: counters.rowsDone,
        chunksDone: counters.chunksDone,
        continued,
        range: gen,
      };
    });
  }

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
          if (value > input.healthCheck.max) {
            logger.debug({ table: input.table, value, max: input.healthCheck.max }, 'health probe over threshold; backing off');
            nextHealthAt = 0;
            await wait(input.healthCheck.backoffMs);
            continue;
          }
        }

        // --- latency budget / replica lag: the probe's decision (activities/control.ts) ---
        const go = await gate?.beforeChunk();
        if (go?.stop) break;
        if (go?.waitMs) {
          await wait(go.waitMs);
          continue;
        }
        if (go?.chunkSize) result.chunkSize = go.chunkSize;
        // ---

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
          logger.warn({ table: input.table, partition: input.partitionNo, lo: chunk.lo }, 'partition moved under this lease; re-reading its cursor');
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
      const p = await sql.openLane(session.client, input);
      const isArithmetic = isCutByArithmetic({ keyType: input.keyType, isKeyUnique: input.isKeyUnique ?? false, lo: p.lo, hi: p.hi, rowsPlanned: Number(p.rows_planned) });
      return { session, cursor: p.cursor, hi: p.hi, isDone: p.is_done, fixedChunks: p.fixed_chunks, isArithmetic, nextCut: undefined };
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
    const t = { table: input.table, key: input.key, keyType: input.keyType };
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
        const cut = lane.nextCut !== undefined ? lane.nextCut : await sql.cutChunk(db, t, lo, lane.hi, size);
        hi = await sql.chunkEndPastLo(db, t, lo, lane.hi, cut);
      }
      const isLast = hi === lane.hi;
      let rows: number;
      try {
        rows = (await sql.runRangeStatement(db, input.transform, input.keyType, lo, hi)).rowCount;
      } catch (err) {
        throw classifyPgError(err) === 'fatal' ? chunkFailure(err, lo, hi, 'transform') : err;
      }
      for (const check of input.validate ?? []) {
        let value: unknown;
        try {
          value = (await sql.runRangeStatement(db, check.sql, input.keyType, lo, hi)).value;
        } catch (err) {
          throw classifyPgError(err) === 'fatal' ? chunkFailure(err, lo, hi, `check "${check.name}"`) : err;
        }
        if (!evaluateExpect(Number(value), check.expect).ok) {
          throw ApplicationFailure.create({
            message: `chunk [${lo}, ${hi}) failed check "${check.name}": got ${String(value)}, expected ${describeExpect(check.expect)}`,
            type: CHUNK_VALIDATION_ERROR,
            nonRetryable: true,
            details: [{ lo, hi, check: check.name, value }],
          });
        }
      }
      const ms = performance.now() - t0;
      const nextSize = isLast || !input.targetChunkMs ? size : adaptedChunkSize(input, size, ms);
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

  async function probeHealth(probe: string): Promise<number> {
    return Number((await sql.queryScalar(pool, probe)) ?? 0);
  }

  async function readBackfillCounters(input: { backfillId: number; generation: number }): Promise<sql.BackfillCounters> {
    return sql.backfillCounters(pool, input.backfillId, input.generation);
  }

  /**
   * The backfill's final state and its audit row. With `countGeneration`, the
   * row counts from that generation's checkpoints go into the audit detail and
   * come back to the workflow.
   */
  async function finishBackfill(input: {
    backfillId: number;
    workflowId: string;
    state: string;
    error?: string | null;
    detail?: unknown;
    actor?: string | null;
    countGeneration?: number;
  }): Promise<sql.BackfillCounters | undefined> {
    const counters = await withTransaction(pool, async (db) => {
      const counted = input.countGeneration === undefined ? undefined : await sql.backfillCounters(db, input.backfillId, input.countGeneration);
      const detail = counted
        ? { rowsProcessed: counted.rowsDone, chunksDone: counted.chunksDone, generation: input.countGeneration, ...(input.detail as object) }
        : input.detail;
      await sql.setBackfillState(db, input.backfillId, input.state, input.error ?? null);
      await sql.recordEvent(db, {
        workflowId: input.workflowId,
        kind: 'backfill',
        event: input.state,
        detail: input.error ? { error: input.error, ...(detail as object) } : detail,
        actor: input.actor,
      });
      return counted;
    });
    logger.info({ workflowId: input.workflowId, state: input.state, error: input.error, rows: counters?.rowsDone }, `backfill ${input.state}`);
    return counters;
  }

  async function recordBackfillEvent(input: { workflowId: string; event: string; detail?: unknown; actor?: string | null }): Promise<void> {
    await sql.recordEvent(pool, { ...input, kind: 'backfill' });
  }

  return { prepareBackfill, runPartitionLease, readBackfillCounters, finishBackfill, recordBackfillEvent };
}

export type BackfillActivities = ReturnType<typeof createBackfillActivities>;
