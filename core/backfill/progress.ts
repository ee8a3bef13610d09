/**
 * A rollout's overall percentage and ETA, pure: each step counts the same,
 * a step whose backfill runs counts the share of rows that backfill has
 * done (as its last report said), and the ETA is the running backfills'
 * own. Also when a child backfill reports to its rollout (a bounded cadence,
 * so the rollout's history stays short), and which of a rollout's errors
 * still apply.
 */

/** What a rollout's child backfill tells its rollout (the `backfillProgress` signal). */
export interface ChildBackfillReport {
  workflowId: string;
  name: string;
  /** The backfill's state now: running, backing_off, holding, waiting_window, paused, ... */
  state: string;
  /** Why it is not simply running (the health check's value, the budget, the window), or null. */
  stateReason: string | null;
  rowsDone: number;
  rowsTotal: number;
  rowsPerSecond: number;
  etaSeconds: number | null;
  /** The backfill's workflow time when it reported (epoch ms). */
  at: number;
}

/** The parts of a step this module reads (workflows/definitions.ts StepProgress). */
export interface StepView {
  id: string;
  state: string;
  backfillWorkflowId?: string;
  error?: string;
}

/** What the rollout's `progress` query adds from here. */
export interface RolloutFigures {
  /** 0..100, one decimal. */
  percent: number;
  /** Seconds until the running backfills finish at their rate; null when none runs or none has a rate yet. */
  etaSeconds: number | null;
  /** The last reports of the backfills running now. */
  backfills: ChildBackfillReport[];
  /** The error the rollout is stopped on (held, failed, refused, rolled back on it); null once it no longer applies. */
  lastError: string | null;
  /** An error that held the rollout until a `retry` got past it. */
  lastRecoveredError: string | null;
}

const DONE_STEP_STATES = new Set(['completed', 'skipped']);
const ACTIVE_STEP_STATES = new Set(['running', 'held']);

/** A backfill's share done, 0..1. */
export function backfillFraction(r: Pick<ChildBackfillReport, 'rowsDone' | 'rowsTotal' | 'state'>): number {
  if (r.state === 'completed') return 1;
  if (!(r.rowsTotal > 0)) return 0;
  return Math.min(1, Math.max(0, r.rowsDone / r.rowsTotal));
}

/** The running backfill's report of a step, if its latest backfill has reported. */
function reportOf(step: StepView, reports: ReadonlyMap<string, ChildBackfillReport>): ChildBackfillReport | undefined {
  if (!ACTIVE_STEP_STATES.has(step.state) || !step.backfillWorkflowId) return undefined;
  return reports.get(step.backfillWorkflowId);
}

/** One step's share done, 0..1: done steps 1, a step backfilling its backfill's share, anything else 0. */
export function stepFraction(step: StepView, reports: ReadonlyMap<string, ChildBackfillReport>): number {
  if (DONE_STEP_STATES.has(step.state)) return 1;
  const r = reportOf(step, reports);
  return r ? backfillFraction(r) : 0;
}

/** Percent and ETA of a rollout; a completed rollout is 100% whatever its steps say. */
export function rolloutPercent(
  state: string,
  steps: readonly StepView[],
  reports: ReadonlyMap<string, ChildBackfillReport>,
): Pick<RolloutFigures, 'percent' | 'etaSeconds' | 'backfills'> {
  const backfills = steps.map((s) => reportOf(s, reports)).filter((r): r is ChildBackfillReport => r !== undefined);
  if (state === 'completed') return { percent: 100, etaSeconds: 0, backfills: [] };
  const sum = steps.reduce((acc, s) => acc + stepFraction(s, reports), 0);
  const percent = steps.length ? Math.floor((sum / steps.length) * 1000) / 10 : 0;
  const etas = backfills.map((r) => r.etaSeconds).filter((e): e is number => typeof e === 'number');
  return { percent, etaSeconds: etas.length ? Math.max(...etas) : null, backfills };
}

/**
 * Whether the rollout's last error still applies: while a step carries it
 * (held, failed, reverted on it) or the rollout is held, failed or was refused
 * on it. (A revert that holds sets the rollout held, records the hold, and only
 * then marks the step: a query in between saw a held rollout with no error.)
 * Once a `retry` got the held step going again its error is cleared from the
 * step, and the rollout's error becomes a recovered one.
 */
export function currentError(
  state: string,
  lastError: string | null,
  steps: readonly StepView[],
): Pick<RolloutFigures, 'lastError' | 'lastRecoveredError'> {
  if (lastError === null) return { lastError: null, lastRecoveredError: null };
  // held: the error that held it applies, even in the moment before the held step is marked with it
  const applies = state === 'failed' || state === 'refused' || state === 'held' || steps.some((s) => s.error === lastError);
  return applies ? { lastError, lastRecoveredError: null } : { lastError: null, lastRecoveredError: lastError };
}

/** Everything the rollout's `progress` query takes from here. */
export function rolloutFigures(
  state: string,
  steps: readonly StepView[],
  reports: ReadonlyMap<string, ChildBackfillReport>,
  lastError: string | null,
): RolloutFigures {
  return { ...rolloutPercent(state, steps, reports), ...currentError(state, lastError, steps) };
}

// ---- the child's side: when to report ------------------------------------

export const REPORT_TUNING = {
  /** Row progress is reported at most this often (workflow time)... */
  minIntervalMs: 5_000,
  /** ...and only once it moved by a whole percent: at most 100 such reports a generation. */
  percentStep: 1,
  /** State changes (running <-> backing_off, holding, waiting_window, paused) are reported at once, at most this many times a generation; later ones ride along with row reports. */
  maxStateReports: 100,
} as const;

/** The last report a child sent: carried across its continue-as-new, so the bound holds for the whole generation. */
export interface ReportMark {
  at: number;
  percent: number;
  state: string;
  stateReports: number;
}

/**
 * Whether a child backfill reports now. At most ~200 signals a generation
 * reach the rollout (each costs it a few history events): whole percents no
 * more often than every few seconds, and state changes up to a budget.
 */
export function shouldReport(
  last: ReportMark | undefined,
  now: { at: number; percent: number; state: string },
  t: { minIntervalMs: number; percentStep: number; maxStateReports: number } = REPORT_TUNING,
): 'state' | 'rows' | false {
  if (!last) return 'state';
  if (now.state !== last.state && last.stateReports < t.maxStateReports) return 'state';
  if (now.at - last.at < t.minIntervalMs) return false;
  if (Math.floor(now.percent / t.percentStep) > Math.floor(last.percent / t.percentStep)) return 'rows';
  return false;
}

/** The mark after a report. */
export function markReport(
  last: ReportMark | undefined,
  now: { at: number; percent: number; state: string },
  kind: 'state' | 'rows',
): ReportMark {
  return { at: now.at, percent: now.percent, state: now.state, stateReports: (last?.stateReports ?? 0) + (kind === 'state' ? 1 : 0) };
}

// ---- the state an operator sees -------------------------------------------

/** Rollout states a pause shows over: the rollout is alive and would go on without it. */
const PAUSABLE = new Set(['running', 'waiting_approval', 'held', 'waiting_window', 'backing_off', 'holding']);
/** A running backfill's states that mean rows do not move, in the order the rollout shows them. */
const STOPPED_CHILD = ['backing_off', 'holding', 'waiting_window'];

/**
 * What `status`, `list --state` and the StagefillState search attribute say a
 * rollout is: `paused` over any live state while it is paused (approving a
 * paused rollout leaves it paused: nothing starts until `resume`); while it
 * runs, a running backfill's `backing_off`, `holding` or `waiting_window`
 * (rows do not move); else the workflow's own state.
 */
export function shownRolloutState(state: string, isPaused: boolean, backfills: readonly Pick<ChildBackfillReport, 'state'>[]): string {
  if (isPaused && PAUSABLE.has(state)) return 'paused';
  if (state !== 'running') return state;
  for (const s of STOPPED_CHILD) if (backfills.some((b) => b.state === s)) return s;
  return state;
}

/** Why the rollout is in its shown state, when it is not plainly running (null then). */
export function shownStateReason(
  shown: string,
  underlying: string,
  backfills: readonly Pick<ChildBackfillReport, 'state' | 'name' | 'stateReason'>[],
  rollbackWindow?: { step: string; endsAt: string },
): string | null {
  if (shown === 'paused') return underlying === 'running' ? 'paused: `resume` goes on' : `paused while ${underlying}: \`resume\` goes on`;
  if (shown === 'waiting_window' && rollbackWindow)
    return `step "${rollbackWindow.step}" waits for the rollback window until ${rollbackWindow.endsAt}; \`rollback\` still reverts until then`;
  const b = backfills.find((x) => x.state === shown);
  if (b) return `backfill ${b.name} ${shown}${b.stateReason ? `: ${b.stateReason}` : ''}`;
  return null;
}
