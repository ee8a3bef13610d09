/**
 * A fleet's names: its workflow id, the task queue each target is served on,
 * and its children's ids. One builder, used by the CLI, the worker and the
 * fleet workflow. Pure.
 */

/** A target's name: it becomes part of a task queue and workflow ids, so plain characters only. */
export const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Every fleet's workflow id starts so (`history` tells a fleet's id from a run's by it). */
export const FLEET_ID_PREFIX = 'stagefill-fleet:';

export function fleetWorkflowId(name: string): string {
  return `${FLEET_ID_PREFIX}${name}`;
}

/** The task queue a target's worker polls: the base queue and the target, e.g. `stagefill@tenant_7`. */
export function targetQueue(baseQueue: string, target: string): string {
  return `${baseQueue}@${target}`;
}

/** The queue of the fleet's control activities (which targets exist, their tables' shapes); no target is named `#fleet`. */
export function fleetControlQueue(baseQueue: string): string {
  return `${baseQueue}#fleet`;
}

/**
 * A worker process's own control queue: the targets of its file are asked
 * there, of that process alone. Every process also polls the shared control
 * queue with the identity `fleetProcessIdentity(key)`, so the poller list of
 * the shared queue (DescribeTaskQueue) names every process serving fleets.
 */
export function fleetProcessQueue(baseQueue: string, processKey: string): string {
  return `${fleetControlQueue(baseQueue)}:${processKey}`;
}

const PROCESS_IDENTITY_PREFIX = 'stagefill-fleet-process:';

/** The identity a process's control worker polls the shared control queue with. */
export function fleetProcessIdentity(processKey: string): string {
  return `${PROCESS_IDENTITY_PREFIX}${processKey}`;
}

/** The process key of a poller's identity, or undefined for a poller that is not a stagefill fleet process (an older worker). */
export function processKeyOf(identity: string): string | undefined {
  return identity.startsWith(PROCESS_IDENTITY_PREFIX) ? identity.slice(PROCESS_IDENTITY_PREFIX.length) || undefined : undefined;
}

/** The per-target workflow the fleet starts on the target's queue (it runs the change as its own child). */
export function targetRunId(fleetId: string, target: string): string {
  return `${fleetId}/${target}`;
}

/** The target's rollout or backfill: the change itself, as `stagefill status` shows it. */
export function targetChangeId(fleetId: string, target: string): string {
  return `${fleetId}/${target}/change`;
}
