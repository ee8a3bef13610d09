/**
 * Continue-as-new for a long rollout (soaks, approvals and rollback windows
 * can wait for days): when it is safe, and what the next run of the chain
 * carries so that its waiting steps resume where they waited and no
 * activity runs again. Deterministic.
 */
import { workflowInfo, log, continueAsNew, condition, patched, CancellationScope } from '@temporalio/workflow';
import { cancelledBeforeHandover, handoverCancelled } from '../handover';
import type { CarriedRollout, RolloutRun, RolloutWorkflowInput, RolloutResult } from './run';

/**
 * A run continues as new once its history reaches this many events (or the
 * server suggests it), at the first safe point: no step in the middle of an
 * activity or a child backfill, only waits (soak intervals, approvals,
 * rollback windows, held gates) or nothing running between steps.
 */
export const CONTINUE_AS_NEW_AFTER_EVENTS = 2000;

/** Safe to continue as new: history long enough, every running step waiting (or none running), the audit written. */
export function shouldContinue(run: RolloutRun): boolean {
  if (!run.durable) return false;
  const info = workflowInfo();
  const eventLimit = Math.max(200, run.input.continueAsNewAfterEvents ?? CONTINUE_AS_NEW_AFTER_EVENTS);
  if (info.historyLength < eventLimit && !info.continueAsNewSuggested) return false;
  for (const id of run.scopes.keys()) if (!run.parked.has(id)) return false;
  return run.audit.isDrained();
}

/**
 * Patch: a run ends (completes, fails, rolls back or continues as new) only
 * when no webhook delivery is running and its audit queue is written, both
 * seen in one workflow task, and a run continuing as new reads what it
 * carries after that. Before it, the run built what it carried, then waited
 * for a delivery: a signal handled meanwhile (an approval, a pause, an
 * operator's resume) was left out of the next run, and its audit entry was
 * written under a key the next run used again, so the entry after it was
 * dropped as a duplicate.
 */
export const QUIET_CLOSE = 'quiet-close';

/** Nothing of this run is still going on that its end would cut off: no delivery, no unwritten audit entry. */
export function isQuiet(run: RolloutRun): boolean {
  return run.notify.isIdle() && run.audit.isSettled();
}

/** Waits, even in a cancelled workflow, until the run is quiet. What follows in the same workflow task sees every signal handled so far. */
export async function quiesce(run: RolloutRun): Promise<void> {
  if (isQuiet(run)) return;
  await CancellationScope.nonCancellable(() => condition(() => isQuiet(run)));
}

export async function continueChain(run: RolloutRun): Promise<never> {
  // called from the workflow's body: its scope is the root, which the workflow's cancel cancels
  const root = CancellationScope.current();
  // decided on a condition check; from here no waiting step leaves its wait (see park in steps.ts)
  run.continuing = true;
  if (patched(QUIET_CLOSE)) await quiesce(run);
  else await run.audit.drain();
  if (cancelledBeforeHandover(root)) {
    run.continuing = false;
    throw handoverCancelled();
  }
  // from here to continueAsNew nothing awaits: no signal lands between what is read and the hand-over
  const next: CarriedRollout = {
    begun: run.begun!,
    run: (run.carried?.run ?? 1) + 1,
    startedAt: run.startedAt,
    state: run.state,
    lastError: run.lastError,
    rollbackReason: run.rollbackReason,
    rollbackBy: run.rollbackBy ?? null,
    isPaused: run.isPaused,
    approvals: run.approvals,
    retries: run.retries,
    auditSeq: run.audit.seq,
    steps: [...run.steps.values()],
    touched: run.touched,
    exposedAt: [...run.exposedAt],
    done: [...run.done],
    active: [...run.scopes.keys()],
    stepRuns: Object.fromEntries([...run.stepRuns].filter(([id]) => run.scopes.has(id))),
  };
  log.info('rollout continues as new', { historyLength: workflowInfo().historyLength, run: next.run, waiting: next.active });
  return continueAsNew<(input: RolloutWorkflowInput) => Promise<RolloutResult>>({ ...run.input, carried: next });
}
