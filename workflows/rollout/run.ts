/**
 * A rollout run's state inside its workflow, and what reads or changes it:
 * the `progress` query and result, the rollout's and its steps' states (with
 * the UI's search attributes), step rows, a step's activity input.
 * Deterministic; shared by rollout.ts (handlers and the graph),
 * rollout-steps.ts (one step), rollout-rollback.ts and rollout-chain.ts
 * (continue-as-new), with the audit queue in rollout-audit.ts.
 */
import type { CancellationScope } from '@temporalio/workflow';
import { workflowInfo, getExternalWorkflowHandle, log } from '@temporalio/workflow';
import type { BeginRolloutResult } from '../../activities/rollout/index';
import type { RolloutSpec, RolloutStep } from '../../steps/spec';
import type { GraphStep } from '../../steps/graph';
import { normalizeGraph } from '../../steps/graph';
import { isFinal, activeStepIds, busyStepIds } from '../../core/rollout/step-states';
import { shownRolloutState, shownStateReason } from '../../core/backfill/progress';
import type { ActorPayload, RolloutProgress, RolloutState, StepProgress } from '../definitions';
import { pauseSignal, resumeSignal } from '../definitions';
import { setSearchState } from '../search-state';
import { RolloutAudit } from './audit';
import type { Notifier } from '../notify';
import { notifier } from '../notify';
import type { ChildBackfills } from './child-progress';
import { ddl } from './activities';
import { qualifiedName } from '../../core/common/table-name';
import { itemAt } from '../../core/common/checked';

export interface RolloutWorkflowInput {
  spec: RolloutSpec;
  /** Who started it, for the audit trail. */
  actor?: string;
  /** Set by the run before this one of a continue-as-new chain: where the rollout stands. */
  carried?: CarriedRollout;
  /** Events after which a run continues as new at its next safe point (default CONTINUE_AS_NEW_AFTER_EVENTS in rollout-chain.ts; tests lower it). */
  continueAsNewAfterEvents?: number;
  /** A fleet target's change: the task queue of the target's activities (workflows/activity-route.ts); unset: this workflow's own. */
  activityQueue?: string;
}

/** Where a step stands inside a run, carried across continue-as-new so it resumes where it waited. */
export interface StepRun {
  /** Check rounds run so far (gate_results.attempt of the next one is round + 1). */
  round: number;
  /** Soak: when it ends, and when its next round is due while it waits. */
  soakUntil?: number;
  nextCheckAt?: number;
  /** Approval: the approvals count when it began to wait, and its deadline. */
  approvalSeen?: number;
  approvalDeadline?: number;
  /** A held gate or soak (or a contract held on its counterpart check): the retries count when it began to hold. */
  heldSeen?: number;
  /** Contract: when the rollback window it waits for ends (epoch ms). */
  windowEndsAt?: number;
}

/** A rollout's state handed to the next run of its chain; no activity runs again for it. */
export interface CarriedRollout {
  begun: BeginRolloutResult;
  /** Run number in the chain (1 = the first run). */
  run: number;
  startedAt: number;
  state: RolloutState;
  lastError: string | null;
  /** A rollback asked for while the run was handing over: the next run starts it, in its operator's name. */
  rollbackReason?: string | null;
  rollbackBy?: string | null;
  isPaused: boolean;
  approvals: number;
  retries: number;
  auditSeq: number;
  steps: StepProgress[];
  touched: string[];
  exposedAt: [string, number][];
  done: string[];
  /** Steps waiting when the run ended: the next run resumes them. */
  active: string[];
  stepRuns: Record<string, StepRun>;
}

export interface RolloutResult {
  state: RolloutState;
  steps: StepProgress[];
  rollbackReason: string | null;
  catalog?: { table: string; equal: boolean; diff: string[] }[];
}

/** What the workflow's parts share: the spec and its graph, where the rollout and each step stand, what runs now. */
export interface RolloutRun {
  readonly input: RolloutWorkflowInput;
  readonly spec: RolloutSpec;
  readonly carried?: CarriedRollout;
  readonly workflowId: string;
  /** False for runs recorded before durable audits: they write audits from handlers and never continue as new. */
  readonly durable: boolean;
  /**
   * The patch 'rollout-live-states': the search attribute follows the state an operator sees (paused, a backfill's
   * hold, the rollback window), each state change has its audit row, and a rollback's audit row comes before its
   * reverts'. False for runs recorded before it.
   */
  readonly liveStates: boolean;
  /** The state last written to the search attribute (with liveStates). */
  shownSa?: string;
  readonly graph: GraphStep[];
  readonly stepOf: Map<string, RolloutStep>;
  readonly tables: string[];
  /** Set by the first run's beginRollout (carried after it). */
  begun?: BeginRolloutResult;
  readonly startedAt: number;
  state: RolloutState;
  lastError: string | null;
  rollbackReason: string | null;
  /** Who asked for the rollback (the rollback signal's actor); reverts and the finish are recorded in their name. */
  rollbackBy?: string;
  catalog: RolloutResult['catalog'];
  isPaused: boolean;
  approvals: number;
  retries: number;
  /** Bumped by every handler and every step that ends, so conditions re-check. */
  wake: number;
  readonly steps: Map<string, StepProgress>;
  /** Steps whose effect reached the database (even partly), in the order they started: what a rollback reverts. */
  readonly touched: string[];
  /** Per table, when its newest rollback window began (an expose). */
  readonly exposedAt: Map<string, number>;
  readonly stepRuns: Map<string, StepRun>;
  readonly done: Set<string>;
  readonly started: Set<string>;
  /** The steps running now, each in its scope (a failure cancels them). */
  readonly scopes: Map<string, CancellationScope>;
  /** Steps of this run waiting in a timer or a condition (nothing in flight): where it may continue as new. */
  readonly parked: Set<string>;
  /** Set when this run has decided to continue as new: waiting steps stay put from then on. */
  continuing: boolean;
  readonly audit: RolloutAudit;
  /** The webhook (notify.ts): told of every state change. */
  readonly notify: Notifier;
  /** The child backfills' last reports (rollout-child-progress.ts): the percentage and ETA move while they run. */
  readonly children: ChildBackfills;
}

// Date.now() inside a workflow is the deterministic time of the current workflow task.
export const now = () => Date.now();

/** Raised inside a step to start a rollback (or stop without one, for approval onTimeout: fail). */
export class StepFailure extends Error {
  constructor(
    message: string,
    readonly shouldRollback: boolean,
  ) {
    super(message);
  }
}

/**
 * The run's state: a first run's from the spec, a later run's from what the
 * one before carried; `children` tracks the child backfills' reports
 * (trackChildBackfills, which sets the signal's handler).
 */
export function newRolloutRun(input: RolloutWorkflowInput, durable: boolean, children: ChildBackfills, liveStates = false): RolloutRun {
  const { spec, carried } = input;
  const graph: GraphStep[] = normalizeGraph(spec.steps, qualifiedName(spec.table)).map((g) => ({ ...g, table: qualifiedName(g.table) }));
  const tables = [...new Set(graph.map((g) => g.table))];
  const workflowId = workflowInfo().workflowId;
  const done = new Set<string>(carried?.done ?? []);
  const run: RolloutRun = {
    input,
    spec,
    carried,
    workflowId,
    durable,
    liveStates,
    graph,
    stepOf: new Map(graph.map((g, i) => [g.id, itemAt(spec.steps, i, 'step')])),
    tables,
    begun: carried?.begun,
    startedAt: carried?.startedAt ?? workflowInfo().runStartTime.getTime(),
    state: carried?.state ?? 'starting',
    lastError: carried?.lastError ?? null,
    rollbackReason: carried?.rollbackReason ?? null,
    rollbackBy: carried?.rollbackBy ?? undefined,
    catalog: undefined,
    isPaused: carried?.isPaused ?? false,
    approvals: carried?.approvals ?? 0,
    retries: carried?.retries ?? 0,
    wake: 0,
    steps: new Map<string, StepProgress>(
      carried
        ? carried.steps.map((s) => [s.id, s])
        : graph.map((g) => [g.id, { id: g.id, kind: g.kind, table: g.table, dependsOn: g.dependsOn, state: 'pending' }]),
    ),
    touched: carried ? [...carried.touched] : [],
    exposedAt: new Map<string, number>(carried?.exposedAt ?? []),
    stepRuns: new Map<string, StepRun>(Object.entries(carried?.stepRuns ?? {})),
    done,
    started: new Set<string>([...done, ...(carried?.active ?? [])]),
    scopes: new Map<string, CancellationScope>(),
    parked: new Set<string>(),
    continuing: false,
    // keyed when written: the rollout id is known once beginRollout has returned
    audit: new RolloutAudit({ durable, workflowId, rolloutId: () => run.begun?.rolloutId }, carried?.auditSeq ?? 0),
    notify: notifier({ kind: 'rollout', name: spec.name, tables, notify: spec.notify }),
    children,
  };
  return run;
}

/** The state an operator sees (core/backfill/progress.ts): paused over what it does, a running backfill's hold. */
export function shownState(run: RolloutRun): RolloutState {
  const { backfills } = run.children.figures(run.state, [...run.steps.values()], run.lastError);
  return shownRolloutState(run.state, run.isPaused, backfills) as RolloutState;
}

/** A contract step waiting for its rollback window, and when the window ends. */
function rollbackWindow(run: RolloutRun): { step: string; endsAt: string } | undefined {
  for (const [id, r] of run.stepRuns)
    if (r.windowEndsAt !== undefined && r.windowEndsAt > now() && run.steps.get(id)?.state === 'running')
      return { step: id, endsAt: new Date(r.windowEndsAt).toISOString() };
  return undefined;
}

/** With liveStates: the search attribute follows the shown state (a pause, a resume, a backfill's hold). */
export function refreshShownState(run: RolloutRun): void {
  if (!run.liveStates) return;
  const shown = shownState(run);
  if (shown === run.shownSa) return;
  run.shownSa = shown;
  setSearchState(shown);
}

/** States in which nothing moves: no ETA then, and no rate. */
const STANDING = new Set(['paused', 'backing_off', 'holding', 'waiting_window', 'held', 'waiting_approval']);

/** The `progress` query's answer. */
export function progress(run: RolloutRun): RolloutProgress {
  const running = activeStepIds(run.steps.values());
  // percent, ETA, the running backfills; lastError only while it applies (lastRecoveredError after a retry got past it)
  const figures = run.children.figures(run.state, [...run.steps.values()], run.lastError);
  const state = shownRolloutState(run.state, run.isPaused, figures.backfills) as RolloutState;
  const window = rollbackWindow(run);
  return {
    kind: 'rollout',
    name: run.spec.name,
    tables: run.tables,
    state,
    paused: run.isPaused,
    stateReason: shownStateReason(state, run.state, figures.backfills, window),
    ...(window ? { rollbackWindow: window } : {}),
    currentStep: running[0] ?? null,
    runningSteps: running,
    steps: [...run.steps.values()],
    rollbackReason: run.rollbackReason,
    catalog: run.catalog,
    ...figures,
    // a standing rollout has no ETA: the backfills' last rate says nothing of when it goes on
    etaSeconds: STANDING.has(state) ? null : figures.etaSeconds,
  };
}

export function result(run: RolloutRun): RolloutResult {
  return { state: run.state, steps: [...run.steps.values()], rollbackReason: run.rollbackReason, catalog: run.catalog };
}

/** The rollout's state, and the UI's state column (with the step it concerns, if given). */
export function setState(run: RolloutRun, s: RolloutState, step?: string): void {
  // with liveStates every change of the rollout's own state has its audit row (from starting -> running on, once beginRollout made its row)
  if (run.liveStates && s !== run.state && run.begun) run.audit.record('state_changed', step, undefined, { from: run.state, to: s });
  run.state = s;
  const shown = run.liveStates ? shownState(run) : s;
  run.shownSa = shown;
  setSearchState(shown, step === undefined ? {} : { step });
  run.notify.state(s, { step, lastError: run.lastError, rollbackReason: run.rollbackReason });
}

/** One step's progress, and the UI's step column (every step working or holding). */
export function setStep(run: RolloutRun, id: string, patch: Partial<StepProgress>): void {
  const s = run.steps.get(id)!;
  Object.assign(s, patch);
  const shown = run.liveStates ? shownState(run) : run.state;
  run.shownSa = shown;
  setSearchState(shown, { step: busyStepIds(run.steps.values()).join(',') });
}

/** A step's new state, in its progress and its row (with the audit row, keyed in a durable run). */
export async function recordStep(run: RolloutRun, g: GraphStep, s: StepProgress['state'], detail?: unknown): Promise<void> {
  setStep(run, g.id, { state: s, ...(isFinal(s) ? { finishedAt: new Date(now()).toISOString() } : {}) });
  const auditKey = run.durable ? run.audit.nextKey() : undefined;
  await ddl.recordStepState({
    rolloutId: run.begun!.rolloutId,
    workflowId: run.workflowId,
    stepId: g.id,
    kind: g.kind,
    table: g.table,
    state: s as never,
    detail,
    actor: run.input.actor,
    ...(auditKey ? { auditKey } : {}),
  });
}

/** What the step activities (apply, revert) take. */
export function stepInput(run: RolloutRun, g: GraphStep) {
  return {
    rolloutId: run.begun!.rolloutId,
    workflowId: run.workflowId,
    rolloutName: run.spec.name,
    stepId: g.id,
    step: run.stepOf.get(g.id)!,
    table: g.table,
    allSteps: run.graph.map((x) => ({ id: x.id, table: x.table, step: run.stepOf.get(x.id)! })),
    actor: run.input.actor,
    lockTimeoutMs: run.spec.lockTimeoutMs,
  };
}

/** Passes a pause or resume on to a step's child backfill; a child already gone is only logged. */
export async function signalChild(childId: string, verb: 'pause' | 'resume', who?: ActorPayload): Promise<void> {
  try {
    await getExternalWorkflowHandle(childId).signal(verb === 'pause' ? pauseSignal : resumeSignal, who ?? {});
  } catch (err) {
    log.warn('could not forward signal to backfill', { childId, verb, error: String(err) });
  }
}
