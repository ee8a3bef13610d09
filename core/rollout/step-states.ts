/**
 * Rules over a rollout's step states, read by the rollout workflow (its
 * `progress` query, the UI's search attributes, step rows). Pure: plain ids
 * and state names in, plain answers out.
 */

/** States a step does not leave in its direction of the rollout: it gets its `finishedAt` on entering one. */
const FINAL_STATES = ['completed', 'failed', 'reverted', 'skipped', 'cancelled'];

export function isFinal(state: string): boolean {
  return FINAL_STATES.includes(state);
}

interface StepState {
  id: string;
  state: string;
}

/** The steps `progress` names as running (runningSteps, currentStep): working, holding, or being reverted. */
export function activeStepIds(steps: Iterable<StepState>): string[] {
  return [...steps].filter((s) => s.state === 'running' || s.state === 'held' || s.state === 'reverting').map((s) => s.id);
}

/** The steps the UI's step column names while steps change: working or holding (a revert is not listed). */
export function busyStepIds(steps: Iterable<StepState>): string[] {
  return [...steps].filter((s) => s.state === 'running' || s.state === 'held').map((s) => s.id);
}
