import { temporal } from '@temporalio/proto';
import type { TaskQueueService } from '../routing';
import { processKeyOf } from '../../core/fleet/ids';

/** A poller seen longer ago than this is a process that has gone (a live one polls again within its long poll, a minute at most). */
const POLLER_FRESH_MS = 90_000;

type Poller = temporal.api.taskqueue.v1.IPollerInfo;

const { TaskQueueType, TaskQueueKind, DescribeTaskQueueMode } = temporal.api.enums.v1;

/** The activity pollers of `controlQueue`: over every partition (the enhanced describe), or the root partition's where the server has no such mode. */
async function activityPollers(service: TaskQueueService, namespace: string, controlQueue: string): Promise<Poller[]> {
  const taskQueue = { name: controlQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL };
  try {
    const r = await service.describeTaskQueue({
      namespace,
      taskQueue,
      apiMode: DescribeTaskQueueMode.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
      versions: { unversioned: true },
      taskQueueTypes: [TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY],
      reportPollers: true,
    });
    return Object.values(r.versionsInfo ?? {}).flatMap((v) => Object.values(v.typesInfo ?? {}).flatMap((t) => t.pollers ?? []));
  } catch {
    const r = await service.describeTaskQueue({ namespace, taskQueue, taskQueueType: TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY });
    return r.pollers ?? [];
  }
}

/**
 * The keys of the worker processes that serve fleets on the task queue: the
 * stagefill fleet processes among the pollers of its control queue, seen in
 * the last 90 seconds (Temporal keeps a gone poller listed for a few minutes).
 */
export async function fleetProcessesPolling(service: TaskQueueService, namespace: string, controlQueue: string): Promise<string[]> {
  const now = Date.now();
  const keys = new Set<string>();
  for (const p of await activityPollers(service, namespace, controlQueue)) {
    const key = processKeyOf(p.identity ?? '');
    if (key === undefined) continue;
    const seconds = p.lastAccessTime?.seconds;
    const at = seconds === undefined || seconds === null ? undefined : Number(seconds) * 1000;
    if (at !== undefined && now - at > POLLER_FRESH_MS) continue;
    keys.add(key);
  }
  return [...keys].sort();
}
