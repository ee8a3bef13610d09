import { temporal } from '@temporalio/proto';
import type { DeploymentVersion } from '../core/common/worker-routing';

/** The one call read here; a worker's NativeConnection and a client's Connection both have it. */
export interface TaskQueueService {
  describeTaskQueue(
    req: temporal.api.workflowservice.v1.IDescribeTaskQueueRequest,
  ): Promise<temporal.api.workflowservice.v1.IDescribeTaskQueueResponse>;
}

export interface TaskQueueRouting {
  /** The version new work of the queue goes to; undefined: unversioned workers get it. */
  current?: DeploymentVersion;
  /** The workflow pollers of the last minutes, each with its version (undefined: unversioned). */
  pollers: (DeploymentVersion | undefined)[];
}

const version = (v: { deploymentName?: string | null; buildId?: string | null } | null | undefined): DeploymentVersion | undefined =>
  v?.deploymentName && v.buildId ? { deploymentName: v.deploymentName, buildId: v.buildId } : undefined;

/** Where the server routes the workflow tasks of `taskQueue`, and who polls it (DescribeTaskQueue). */
export async function readRouting(service: TaskQueueService, namespace: string, taskQueue: string): Promise<TaskQueueRouting> {
  const r = await service.describeTaskQueue({
    namespace,
    taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return {
    current: version(r.versioningInfo?.currentDeploymentVersion),
    pollers: (r.pollers ?? []).map((p) =>
      p.deploymentOptions?.workerVersioningMode === temporal.api.enums.v1.WorkerVersioningMode.WORKER_VERSIONING_MODE_VERSIONED
        ? version(p.deploymentOptions)
        : undefined,
    ),
  };
}
