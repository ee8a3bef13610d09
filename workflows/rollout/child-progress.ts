/**
 * The rollout's side of its child backfills' reports: the `backfillProgress`
 * signal handler keeps each one's last report (nothing awaited; no command
 * but, in runs with the rollout's live states, the search attribute when a
 * backfill's hold changes what the rollout shows), and the figures
 * the query adds from them (core/backfill/progress.ts).
 */
import { setHandler } from '@temporalio/workflow';
import type { ChildBackfillReport, RolloutFigures, StepView } from '../../core/backfill/progress';
import { rolloutFigures } from '../../core/backfill/progress';
import { backfillProgressSignal } from '../definitions';

export interface ChildBackfills {
  /** Percent, ETA, the running backfills, and which error still applies. */
  figures(state: string, steps: readonly StepView[], lastError: string | null): RolloutFigures;
}

/** Registers the handler; call once, at the start of the rollout workflow. `onReport` runs after each report is kept. */
export function trackChildBackfills(onReport: () => void = () => {}): ChildBackfills {
  const reports = new Map<string, ChildBackfillReport>();
  setHandler(backfillProgressSignal, (r: ChildBackfillReport) => {
    if (!r || typeof r.workflowId !== 'string') return;
    const before = reports.get(r.workflowId);
    if (!before || r.at >= before.at) reports.set(r.workflowId, r);
    onReport();
  });
  return { figures: (state, steps, lastError) => rolloutFigures(state, steps, reports, lastError) };
}
