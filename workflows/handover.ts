/**
 * What a workflow of either engine does with a cancel that reaches it while
 * it hands over to its next run (continue-as-new): the rollout's chain
 * (rollout/chain.ts) and the backfill's (backfill/workflow.ts) share it, so
 * it sits on their common floor. Deterministic.
 */
import type { CancellationScope } from '@temporalio/workflow';
import { patched, CancelledFailure } from '@temporalio/workflow';

/**
 * Patch: a cancel that reached the run while it was handing over (waiting in
 * quiesce for a delivery, or in the same workflow task) is acted on here, not
 * left behind with the run: continueAsNew does not look at cancellation, and
 * the next run would never hear of it.
 */
export const CANCEL_BEFORE_HANDOVER = 'cancel-before-handover';

/** Whether `scope` (the workflow's root) was cancelled and the run must take its cancel path instead of handing over. */
export function cancelledBeforeHandover(scope: CancellationScope): boolean {
  return scope.consideredCancelled && patched(CANCEL_BEFORE_HANDOVER);
}

export const handoverCancelled = () => new CancelledFailure('workflow cancelled while continuing as new');
