import { ApplicationFailure } from '@temporalio/activity';
import { heartbeating } from '../heartbeat';
import { withTransaction } from '../../db/pool';
import * as sql from '../../db/backfill/backfills';
import { KeyError } from '../../db/backfill/keys';
import { replayPartitions } from '../../core/backfill/chunks';
import { formatRange, keyNames } from '../../core/backfill/keys';
import { hashTransform } from '../../core/common/hash';
import { SETUP_ERROR } from '../../db/errors';
import type { ActivityDeps, PrepareBackfillInput, PreparedBackfill } from './types';
import { createLeaseActivities } from './lease';
import { planPartitions, resolveKey, normalizeInput } from './partition-plan';

/**
 * The backfill activities around the lease loop (activities/backfill/lease.ts):
 * preparing a run (its key, its generation and partitions, from the one
 * partition-plan builder), its counters, its end and its audit events.
 */

export type {
  ActivityMetrics,
  ActivityDeps,
  ChunkCheck,
  PrepareBackfillInput,
  PreparedPartition,
  PreparedBackfill,
  LeaseInput,
  LeaseResult,
} from './types';
export { WORKER_ID } from './types';

function setupFailure(message: string): ApplicationFailure {
  return ApplicationFailure.create({ message, type: SETUP_ERROR, nonRetryable: true });
}

/** A KeyError (the key or range is unusable) as the run's non-retryable setup failure; anything else as it is. */
async function refusingBadKeys<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof KeyError) throw setupFailure(err.message);
    throw err;
  }
}

export function createBackfillActivities(deps: ActivityDeps) {
  const { pool, logger } = deps;

  async function prepareBackfill(input: PrepareBackfillInput): Promise<PreparedBackfill> {
    // the workflow gives it a heartbeat timeout, so a dead worker's attempt is retried at once; planning a large table takes a while
    const stop = heartbeating();
    try {
      return await prepareInTransaction(input);
    } finally {
      stop();
    }
  }

  async function prepareInTransaction(input: PrepareBackfillInput): Promise<PreparedBackfill> {
    const transformHash = hashTransform(input.transform);
    return withTransaction(pool, (db) =>
      refusingBadKeys(async () => {
        await sql.lockBackfillName(db, input.table, input.name);
        const key = await resolveKey(db, input.table, input.key);
        const { keyType, cols } = key;
        const n = cols.length;
        let row = await sql.findBackfill(db, input.table, input.name);
        if (!row) {
          row = await sql.insertBackfill(db, { ...input, key: keyNames(input.key).join(','), keyType, transformHash });
        } else {
          await sql.updateBackfillSpec(db, row.id, { workflowId: input.workflowId, spec: input.spec, transformHash, keyType });
        }
        const backfillId = Number(row.id);
        let generation = row.generation;
        let continued = false;
        if (input.replay) {
          if (generation === 0) throw setupFailure(`replay: backfill ${input.name} on ${input.table} has never run; start it first`);
          const from = await normalizeInput(db, cols, input.replay.from, 'replay --from');
          const to = await normalizeInput(db, cols, input.replay.to, 'replay --to');
          const chunks = await sql.checkpointsInRange(db, backfillId, generation, cols, from, to);
          if (!chunks.length) throw setupFailure(`replay: no chunk of generation ${generation} covers ${formatRange(from, to, n)}`);
          generation += 1;
          await sql.insertGeneration(db, {
            backfillId,
            generation,
            reason: 'replay',
            from,
            to,
            transformHash,
            partitions: replayPartitions(chunks),
          });
        } else if (generation > 0 && !input.restart) {
          continued = true;
        } else {
          const plan = await planPartitions(db, { table: input.table, key: input.key, range: input.range, parallelism: input.parallelism });
          generation += 1;
          await sql.insertGeneration(db, {
            backfillId,
            generation,
            reason: generation === 1 ? 'start' : 'restart',
            from: plan.range?.from ?? '',
            to: plan.range?.to ?? '',
            transformHash,
            partitions: plan.partitions,
            leaves: plan.leaves,
          });
        }
        await sql.setBackfillState(db, backfillId, 'running');
        const parts = await sql.listPartitions(db, backfillId, generation);
        const counters = await sql.backfillCounters(db, backfillId, generation);
        const [first, last] = [parts[0], parts[parts.length - 1]];
        const gen = first && last ? { from: first.lo, to: last.hi } : null;
        await sql.recordEvent(db, {
          workflowId: input.workflowId,
          kind: 'backfill',
          event: continued ? 'continued' : input.replay ? 'replay_started' : 'started',
          detail: { generation, transformHash, chunksDone: counters.chunksDone, rowsDone: counters.rowsDone, range: gen },
        });
        logger.info(
          { backfill: input.name, table: input.table, generation, transformHash, continued, chunksDone: counters.chunksDone },
          continued
            ? `continuing ${input.name} from its checkpoints (${counters.chunksDone} chunks done)`
            : `backfill ${input.name} planned`,
        );
        return {
          backfillId,
          generation,
          keyType,
          isKeyUnique: key.isUnique,
          transformHash,
          partitions: parts.map((p) => ({ no: p.partition_no, isDone: p.is_done })),
          rowsTotal: counters.rowsPlanned,
          rowsDone: counters.rowsDone,
          chunksDone: counters.chunksDone,
          continued,
          range: gen,
        };
      }),
    );
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
    let run: { table: string; name: string } | undefined;
    const counters = await withTransaction(pool, async (db) => {
      const counted =
        input.countGeneration === undefined ? undefined : await sql.backfillCounters(db, input.backfillId, input.countGeneration);
      const detail = counted
        ? {
            rowsProcessed: counted.rowsDone,
            chunksDone: counted.chunksDone,
            generation: input.countGeneration,
            ...(input.detail as object),
          }
        : input.detail;
      run = await sql.setBackfillState(db, input.backfillId, input.state, input.error ?? null);
      await sql.recordEvent(db, {
        workflowId: input.workflowId,
        kind: 'backfill',
        event: input.state,
        detail: input.error ? { error: input.error, ...(detail as object) } : detail,
        actor: input.actor,
      });
      return counted;
    });
    logger.info(
      { workflowId: input.workflowId, state: input.state, error: input.error, rows: counters?.rowsDone },
      `backfill ${input.state}`,
    );
    // the run is over: its gauges (rate, lanes, budget, probe latency) go, so no dashboard shows it working
    if (run) await deps.metrics?.forgetBackfill?.(run.table, run.name);
    return counters;
  }

  async function recordBackfillEvent(input: { workflowId: string; event: string; detail?: unknown; actor?: string | null }): Promise<void> {
    await sql.recordEvent(pool, { ...input, kind: 'backfill' });
  }

  return { prepareBackfill, ...createLeaseActivities(deps), readBackfillCounters, finishBackfill, recordBackfillEvent };
}

export type BackfillActivities = ReturnType<typeof createBackfillActivities>;
