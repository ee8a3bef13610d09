import type { ActivityDeps } from '../backfill/index';
import { createRolloutBookkeeping } from './rollouts';
import { createStepRunner } from './steps';
import { createGateActivities } from './gates';

/**
 * Every activity the rollout workflow calls, under the names its recorded
 * histories use: the rollout's bookkeeping (activities/rollout/rollouts.ts), the step
 * runner (activities/rollout/steps.ts: applyStep, finishStep, revertStep through each kind's
 * module under steps/) and the gate checks (activities/rollout/gates.ts).
 */
export function createRolloutActivities(deps: ActivityDeps) {
  const { beginRollout, recordStepState, recordRolloutEvent, recordRolloutEvents, finishRollout, catalogDiff } =
    createRolloutBookkeeping(deps);
  const { applyStep, revertStep, finishStep } = createStepRunner(deps);
  const { runChecks } = createGateActivities(deps);
  return {
    beginRollout,
    applyStep,
    finishStep,
    revertStep,
    runChecks,
    recordStepState,
    recordRolloutEvent,
    recordRolloutEvents,
    finishRollout,
    catalogDiff,
  };
}

export type RolloutActivities = ReturnType<typeof createRolloutActivities>;

export type { KeyedAuditEntry } from '../../db/rollout/audit';
export type { BeginRolloutInput, BeginRolloutResult, StepState, CatalogComparison } from './rollouts';
export type { StepInput, StepApplied, StepFinished } from './step-types';
export type { RunChecksInput } from './gates';
export type { CheckResult } from '../../core/rollout/checks';
