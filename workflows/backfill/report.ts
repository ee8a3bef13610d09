/**
 * A backfill's state as it changes, and what it tells others about it: the
 * search attribute (StagefillState), and — for a backfill a rollout's step
 * started — its rows, rate and state to that rollout, so the rollout's
 * percentage and ETA move with it. Deterministic.
 */
import { workflowInfo, patched, getExternalWorkflowHandle, CancellationScope, log } from '@temporalio/workflow';
import { isControlled } from '../../core/backfill/throttle';
import { liveState } from '../../core/backfill/state';
import type { ChildBackfillReport } from '../../core/backfill/progress';
import { shouldReport, markReport } from '../../core/backfill/progress';
import type { BackfillState } from '../definitions';
import { backfillProgressSignal } from '../definitions';
import { setSearchState } from '../search-state';
import type { BackfillRun } from './run';
import { now, progress } from './run';

/** Patch: a round's states (backing_off, holding) reach the search attribute; histories recorded before kept `running`. */
const LIVE_STATES = 'backfill-live-states';
/** Patch: a rollout's child backfill signals its progress to the rollout. */
const CHILD_PROGRESS = 'child-progress';

const IN_ROUND = new Set<BackfillState>(['running', 'backing_off', 'holding']);
const FINAL = new Set<BackfillState>(['completed', 'failed', 'cancelled', 'window_closed']);

/** Sets the run's state; a change goes to the search attribute and to a parent rollout. */
export function setRunState(run: BackfillRun, s: BackfillState): void {
  if (s === run.state) return;
  run.state = s;
  setSearchState(s);
  reportToParent(run);
}

/**
 * After a lease: the state inside the round follows the last health reading
 * and the controller's decision, and a parent rollout hears of the rows.
 */
export function afterLease(run: BackfillRun): void {
  if (IN_ROUND.has(run.state)) {
    const next = liveState(run.c.health, run.c.control, isControlled(run.c.throttle));
    if (next !== run.state && (next === 'running' || hasLiveStates(run))) setRunState(run, next);
  }
  reportToParent(run);
}

/** Asked once a run, when it first leaves plain `running`: histories recorded before never did, and replay without the marker. */
function hasLiveStates(run: BackfillRun): boolean {
  run.hasLiveStates ??= patched(LIVE_STATES);
  return run.hasLiveStates;
}

/** Signals the parent rollout, at the cadence core/backfill/progress.ts allows. */
export function reportToParent(run: BackfillRun): void {
  const parent = workflowInfo().parent;
  if (!parent || run.state === 'starting' || FINAL.has(run.state) || !run.c.prepared) return;
  run.reportsToParent ??= patched(CHILD_PROGRESS);
  if (!run.reportsToParent) return;
  const p = progress(run);
  const mark = { at: now(), percent: p.rowsTotal > 0 ? (p.rowsProcessed * 100) / p.rowsTotal : 0, state: run.state };
  const kind = shouldReport(run.c.report, mark);
  if (!kind) return;
  run.c.report = markReport(run.c.report, mark, kind);
  const report: ChildBackfillReport = {
    workflowId: run.workflowId,
    name: run.spec.name,
    state: p.state,
    stateReason: p.stateReason,
    rowsDone: p.rowsProcessed,
    rowsTotal: p.rowsTotal,
    rowsPerSecond: p.rowsPerSecond,
    etaSeconds: p.etaSeconds,
    at: mark.at,
  };
  // not cancelled with the round it was sent from (a pause cancels the round); a rollout gone is no failure of the backfill
  void CancellationScope.nonCancellable(() => getExternalWorkflowHandle(parent.workflowId).signal(backfillProgressSignal, report)).catch(
    (err) => log.warn('could not report progress to the rollout', { rollout: parent.workflowId, error: String(err) }),
  );
}
