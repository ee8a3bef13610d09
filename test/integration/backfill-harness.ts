// backfill helpers: a worker for one test and the backfill workflow started the way the tests start it
import type { WorkflowHandle } from '@temporalio/client';
import { backfillWorkflow, BackfillWorkflowInput } from '../../workflows/backfill';
import { backfillWorkflowId } from '../../plan/ids';
import type { BackfillSpec } from '../../spec';
import { startWorker, unique, client } from './harness';

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

/** Starts the backfill workflow of `spec` on `taskQueue` under its usual workflow id (lease 500 ms unless `input` says). */
export function startRun(taskQueue: string, spec: BackfillSpec, input: RunInput = {}): Promise<WorkflowHandle<typeof backfillWorkflow>> {
  return client.workflow.start(backfillWorkflow, {
    taskQueue,
    workflowId: backfillWorkflowId(spec.table, spec.name),
    args: [{ spec, leaseMs: 500, ...input }],
  });
}

/** Runs the backfill of `spec` to its end with a worker of its own; its result (a failed run rejects with WorkflowFailedError). */
export function runBackfill(spec: BackfillSpec, input: RunInput = {}, opts: Parameters<typeof startWorker>[1] = {}) {
  return withWorker(async (taskQueue) => (await startRun(taskQueue, spec, input)).result(), opts);
}
