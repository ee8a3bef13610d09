/**
 * Worker Versioning, as an operator meets it: a task queue whose deployment
 * has a current version sends its work only to workers of that version, so a
 * worker of another build (or an unversioned one) polls and receives nothing.
 * Pure: what the worker at start and `stagefill status` say about it.
 */

/** A worker deployment version: the deployment's name and a build id. */
export interface DeploymentVersion {
  deploymentName: string;
  buildId: string;
}

/** The command that gives a task queue back to unversioned workers. */
export function handBackCommand(deploymentName: string): string {
  return `temporal worker deployment set-current-version --deployment-name ${deploymentName} --unversioned`;
}

/**
 * Why a worker of `worker` (undefined: unversioned) on `taskQueue` gets no work
 * while the queue's current version is `current` (undefined: unversioned
 * workers get it), or undefined when it gets work. A versioned worker that
 * makes itself current (`setsCurrent`) is not stuck: it takes the queue over.
 */
export function routingProblem(
  taskQueue: string,
  worker: DeploymentVersion | undefined,
  current: DeploymentVersion | undefined,
  setsCurrent = false,
): string | undefined {
  if (!current) return undefined;
  const owner = `task queue ${taskQueue} belongs to worker deployment ${current.deploymentName}, whose current version is build ${current.buildId}`;
  const join = `STAGEFILL_DEPLOYMENT=${current.deploymentName} STAGEFILL_BUILD_ID=${current.buildId}`;
  if (!worker)
    return `${owner}: this unversioned worker gets no work. Hand the queue back with \`${handBackCommand(current.deploymentName)}\`, or join the deployment (${join})`;
  if (worker.deploymentName === current.deploymentName && worker.buildId === current.buildId) return undefined;
  if (setsCurrent) return undefined;
  if (worker.deploymentName !== current.deploymentName)
    return `${owner}: this worker of deployment ${worker.deploymentName} gets no work. Start it with ${join}, or hand the queue back with \`${handBackCommand(current.deploymentName)}\``;
  return `${owner}: this worker's build ${worker.buildId} gets no new work until it is made current (STAGEFILL_SET_CURRENT_VERSION=true, or \`temporal worker deployment set-current-version --deployment-name ${worker.deploymentName} --build-id ${worker.buildId}\`)`;
}

/**
 * What `status` says when a run's query got no answer and its task queue sends
 * its work to `current`: no worker of that build polls (a stopped worker of it
 * stays in the server's poller list for minutes, so the failed query is the
 * evidence); `pollers` of other versions are named as the ones that get no work.
 */
export function noWorkerMessage(
  workflowId: string,
  taskQueue: string,
  current: DeploymentVersion | undefined,
  pollers: (DeploymentVersion | undefined)[],
): string | undefined {
  if (!current) return undefined;
  const others = pollers.filter((p) => !p || p.deploymentName !== current.deploymentName || p.buildId !== current.buildId).length;
  const idle = others ? ` (${others} other worker${others === 1 ? ' polls' : 's poll'} it and get${others === 1 ? 's' : ''} no work)` : '';
  return (
    `${workflowId}: no worker of the run's build is polling: task queue ${taskQueue} sends its work to build ${current.buildId} ` +
    `of worker deployment ${current.deploymentName}, and no worker of that build answers${idle}. ` +
    `Start one (STAGEFILL_DEPLOYMENT=${current.deploymentName} STAGEFILL_BUILD_ID=${current.buildId}), or hand the queue back with \`${handBackCommand(current.deploymentName)}\``
  );
}
