// backfill helpers: a worker for one test, the backfill workflow started and checked the way the tests do it, and the rollout waits and steps the pk tests share
import type { Pool } from 'pg';
import type { WorkflowHandle } from '@temporalio/client';
import type { BackfillWorkflowInput } from '../../workflows/backfill/workflow';
import { backfillWorkflow } from '../../workflows/backfill/workflow';
import { backfillWorkflowId } from '../../core/common/ids';
import type { StartBackfillOptions } from '../../client/operations';
import { startBackfill } from '../../client/operations';
import { startWorker, unique, client, pool, connectionFor, waitFor } from './harness';
import { progressOf } from './rollout-harness';
import { approveSignal } from '../../workflows/definitions';
import { counterSpec, distribution, checkpointChain } from './backfill-checks';
import type { BackfillSpec } from '../../core/common/fields';

export type TestWorker = Awaited<ReturnType<typeof startWorker>>;
/** The workflow's input but its spec (which `startRun`/`runBackfill` take on their own). */
export type RunInput = Omit<BackfillWorkflowInput, 'spec'>;

/**
 * Runs `fn` with one in-process worker on a fresh task queue (with `faults` injected if given);
 * the worker stops after `fn`, whether it passed or threw.
 */
export async function withWorker<T>(
  fn: (taskQueue: string, w: TestWorker) => Promise<T>,
  opts: Parameters<typeof startWorker>[1] = {},
): Promise<T> {
  const taskQueue = unique('q');
  const w = await startWorker(taskQueue, opts);
  try {
    return await fn(taskQueue, w);
  } finally {
    await w.stop();
  }
}

/** Starts the backfill workflow of `spec` on `taskQueue` under its usual workflow id or `workflowId` (lease 500 ms unless `input` says). */
export function startRun(
  taskQueue: string,
  spec: BackfillSpec,
  input: RunInput = {},
  workflowId = backfillWorkflowId(spec.table, spec.name),
) {
  return client.workflow.start(backfillWorkflow, {
    taskQueue,
    workflowId,
    args: [{ spec, leaseMs: 500, ...input }],
  });
}

/** Runs the backfill of `spec` to its end with a worker of its own; its result (a failed run rejects with WorkflowFailedError). */
export function runBackfill(spec: BackfillSpec, input: RunInput = {}, opts: Parameters<typeof startWorker>[1] = {}) {
  return withWorker(async (taskQueue) => (await startRun(taskQueue, spec, input)).result(), opts);
}

/** Starts the backfill of `spec` through the client library, as the CLI does (memo, search attributes); its id and handle. */
export async function startThroughClient(taskQueue: string, spec: BackfillSpec, opts: StartBackfillOptions = {}) {
  const { workflowId } = await startBackfill(connectionFor(client, taskQueue), spec, opts);
  return { workflowId, handle: client.workflow.getHandle<typeof backfillWorkflow>(workflowId) };
}

/** A counter-table backfill whose chunks sleep `seconds` inside their transaction, so chunks are in flight at any moment. */
export function slowChunkSpec(table: string, chunkSize: number, seconds: number, extra: Record<string, unknown> = {}): BackfillSpec {
  return counterSpec(table, {
    chunkSize,
    transform: `UPDATE ${table} SET n = n + 1 WHERE id >= :lo AND id < :hi AND (SELECT pg_sleep(${seconds})) IS NOT NULL`,
    ...extra,
  });
}

/**
 * Waits for the run's end and asserts what a finished counter backfill must show: state completed,
 * each of the table's `rows` rows changed exactly once, and a gapless checkpoint chain (read through `db`). Its result and chain.
 */
export async function expectCompletedOnce(
  handle: WorkflowHandle<typeof backfillWorkflow>,
  table: string,
  name: string,
  rows: number,
  db: Pool = pool,
) {
  const result = await handle.result();
  expect(result.state).toBe('completed');
  expect(await distribution(db, table)).toEqual({ '1': rows });
  const chain = await checkpointChain(db, table, name);
  expect(chain.problems).toEqual([]);
  return { result, chain };
}

/** A rollout's progress once it is in `state` (polled every `everyMs`, for up to `timeoutMs`). */
export function rolloutReaches(handle: WorkflowHandle, state: string, timeoutMs = 120_000, everyMs = 300) {
  return waitFor(
    `the rollout ${state}`,
    async () => {
      const p = await progressOf(handle);
      return p.state === state ? p : undefined;
    },
    timeoutMs,
    everyMs,
  );
}

/** Approves a rollout waiting at its approval step and waits until it is held; its progress then. */
export async function approveIntoHold(handle: WorkflowHandle) {
  await handle.signal(approveSignal, { by: 'test', reason: 'go' });
  return rolloutReaches(handle, 'held');
}

/** An alterColumn step `id` that moves `column` (of `table`, or the spec's own table) from int to bigint; `extra` adds to it. */
export function keyToBigint(id: string, column: string, table?: string, extra: Record<string, unknown> = {}) {
  const change = { newType: 'bigint', up: `${column}::bigint`, down: `${column}::int` };
  return { id, kind: 'alterColumn', ...(table ? { table } : {}), column, ...change, ...extra };
}
