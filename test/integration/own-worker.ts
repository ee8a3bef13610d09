import type { WorkflowHandle } from '@temporalio/client';
import type { RolloutSpec } from '../../steps/spec';
import type { RolloutProgress } from '../../workflows/definitions';
import { loadWorkerConfig } from '../../worker/config';
import { afterThisTest, client, env, startWorker, unique, waitFor } from './harness';
import { startSpec, progressOf } from './rollout-harness';

/**
 * A worker of the test's own, on a fresh task queue, and runs started on it: what the rollout tests that read the
 * worker's metrics or run more than one rollout at a time repeated. Needs `useStack()` (the file's client).
 */

/** A worker in this process on a fresh task queue, stopped after the test. */
export async function ownWorker(): Promise<{ w: Awaited<ReturnType<typeof startWorker>>; taskQueue: string }> {
  const taskQueue = unique('q');
  const w = await startWorker(taskQueue);
  afterThisTest(() => w.stop());
  return { w, taskQueue };
}

/** Starts the rollout (`kind: 'rollout'` added) on a worker of the test's own (see ownWorker). */
export async function rolloutOnOwnWorker(spec: Record<string, unknown>): Promise<{
  handle: WorkflowHandle;
  spec: RolloutSpec;
  w: Awaited<ReturnType<typeof startWorker>>;
  taskQueue: string;
}> {
  const { w, taskQueue } = await ownWorker();
  return { ...(await startSpec(client, taskQueue, { kind: 'rollout', ...spec })), w, taskQueue };
}

/** Waits until the rollout's progress query reports `state`, and returns that progress. */
export function waitForState(handle: WorkflowHandle, state: string, timeoutMs?: number): Promise<RolloutProgress> {
  return waitFor(
    `the rollout to be ${state}`,
    async () => {
      const p = await progressOf(handle);
      return p.state === state && p;
    },
    timeoutMs,
  );
}

/** A worker's configuration on the run's Temporal and database and on `taskQueue`, with `extra` variables on top. */
export function workerConfigFor(taskQueue: string, extra: Record<string, string> = {}): ReturnType<typeof loadWorkerConfig> {
  const e = env();
  return loadWorkerConfig({
    TEMPORAL_ADDRESS: e.address,
    TEMPORAL_NAMESPACE: e.namespace,
    DATABASE_URL: e.databaseUrl,
    STAGEFILL_TASK_QUEUE: taskQueue,
    ...extra,
  });
}
