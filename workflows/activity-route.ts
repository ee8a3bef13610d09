/**
 * Where a run's database activities go. A run of its own (no fleet) leaves
 * them on its workflow's task queue, as always. A fleet target's change runs
 * its workflow on the fleet's base queue (one workflow Worker per process)
 * and sends every activity that touches the database to the target's
 * activity queue (`<queue>@<target>`), which only a worker holding that
 * target's connection polls. Deterministic: the queue comes from the run's
 * input, and module state is per workflow execution in the SDK's sandbox.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { ActivityOptions, UntypedActivities, ActivityInterfaceFor } from '@temporalio/workflow';

let activityQueue: string | undefined;

/** The run's input says where its activities go (undefined: the workflow's own task queue). Call once, first thing. */
export function routeActivities(queue: string | undefined): void {
  activityQueue = queue;
}

/**
 * proxyActivities whose task queue is the run's routed queue, read when each
 * activity is scheduled (the proxies are made when the module loads, before
 * the input is known). Unrouted, the command is the same as proxyActivities'.
 */
export function proxyRoutedActivities<A = UntypedActivities>(options: ActivityOptions): ActivityInterfaceFor<A> {
  const routed = { ...options };
  Object.defineProperty(routed, 'taskQueue', { get: () => activityQueue, enumerable: true });
  return proxyActivities<A>(routed);
}
