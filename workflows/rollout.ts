import {
  proxyActivities,
  workflowInfo,
  condition,
  setHandler,
  CancellationScope,
  isCancellation,
  startChild,
  getExternalWorkflowHandle,
  ApplicationFailure,
  ActivityFailure,
  ChildWorkflowFailure,
  ChildWorkflowCancellationType,
  patched,
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  log,
  continueAsNew,
} from '@temporalio/workflow';
import type { RolloutActivities, CheckResult, BeginRolloutResult, KeyedAuditEntry } from '../activities/rollout';
import type { RolloutSpec, BackfillSpec, GateCheck } from '../spec';
import { normalizeGraph, readySteps, rollbackOrder, GraphStep } from '../plan/graph';
import { planRollout } from '../plan/describe';
import { FailureType } from '../plan/failures';
import { stepModule, roleOf } from '../steps';
import { backfillWorkflowId, qualifiedName } from '../plan/ids';
import { backfillWorkflow, failureMessage } from './backfill';
import {
  pauseSignal,
  resumeSignal,
  approveSignal,
  approveUpdate,
  rollbackSignal,
  retrySignal,
  progressQuery,
  ActorPayload,
  RolloutProgress,
  RolloutState,
  StepProgress,
} from './definitions';
import { setSearchState } from './search-state';
import { initialSearchAttributes } from './search-attributes';
import { trackChildBackfills } from './rollout-child-progress';
import { notifier } from './notify';

export interface RolloutWorkflowInput {
  spec: RolloutSpec;
  /** Who started it, for the audit trail. */
  actor?: string;
  /** Set by the run before this one of a continue-as-new chain: where the rollout stands. */
  carried?: CarriedRollout;
  /** Events after which a run continues as new at its next safe point (default CONTINUE_AS_NEW_AFTER_EVENTS; tests lower it). */
  continueAsNewAfterEvents?: number;
}

/**
 * A run continues as new once its history reaches this many events (or the
 * server suggests it), at the first safe point: no step in the middle of an
 * activity or a child backfill, only waits (soak intervals, approvals,
 * rollback windows, held gates) or nothing running between steps.
 */
export const CONTINUE_AS_NEW_AFTER_EVENTS = 2000;

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
  /** A held gate or soak: the retries count when it began to hold. */
  heldSeen?: number;
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

// Schema changes are short and must not run twice at once: a few quick retries.
// Activities heartbeat every few seconds: a worker that dies mid-step is noticed within heartbeatTimeout.
const ddl = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 30 },
});
// A rollback must finish: retry until it does (operators see the attempts in the UI).
const revert = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
const checks = proxyActivities<RolloutActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10 },
});

/** Raised inside a step to start a rollback (or stop without one, for approval onTimeout: fail). */
class StepFailure extends Error {
  constructor(
    message: string,
    readonly shouldRollback: boolean,
  ) {
    super(message);
  }
}

/**
 * A rollout: the spec's steps as a dependency graph. Ready steps start as soon
 * as what they depend on completes (up to maxConcurrentSteps at once); any
 * failure stops new steps, cancels running ones (a backfill after its current
 * chunk) and reverts every step that touched the schema, newest dependents
 * first. Every database effect is an idempotent activity, so a crash at any
 * point replays to the same place and never applies or reverts a step twice.
 */
export async function rolloutWorkflow(input: RolloutWorkflowInput): Promise<RolloutResult> {
  const { spec, carried } = input;
  const workflowId = workflowInfo().workflowId;
  // Runs recorded before it fire their audit writes from signal handlers and never continue as new.
  const durable = patched('durable-audit-continue-as-new');
  const eventLimit = Math.max(200, input.continueAsNewAfterEvents ?? CONTINUE_AS_NEW_AFTER_EVENTS);
  const graph: GraphStep[] = normalizeGraph(spec.steps, qualifiedName(spec.table)).map((g) => ({ ...g, table: qualifiedName(g.table) }));
  const stepOf = new Map(graph.map((g, i) => [g.id, spec.steps[i]]));
  const tables = [...new Set(graph.map((g) => g.table))];
  const now = () => Date.now(); // the workflow task's deterministic time
  const notify = notifier({ kind: 'rollout', name: spec.name, tables, notify: spec.notify });

  let state: RolloutState = carried?.state ?? 'starting';
  let lastError: string | null = carried?.lastError ?? null;
  let rollbackReason: string | null = carried?.rollbackReason ?? null;
  /** Who asked for the rollback (the rollback signal's actor); reverts and the finish are recorded in their name. */
  let rollbackBy: string | undefined = carried?.rollbackBy ?? undefined;
  let catalog: RolloutResult['catalog'];
  let isPaused = carried?.isPaused ?? false;
  let approvals = carried?.approvals ?? 0;
  let retries = carried?.retries ?? 0;
  let wake = 0; // bumped by every handler, so conditions re-check
  const steps = new Map<string, StepProgress>(
    carried
      ? carried.steps.map((s) => [s.id, s])
      : graph.map((g) => [g.id, { id: g.id, kind: g.kind, table: g.table, dependsOn: g.dependsOn, state: 'pending' }]),
  );
  /** Steps whose effect reached the database (even partly), in the order they started: what a rollback reverts. */
  const touched: string[] = carried ? [...carried.touched] : [];
  const exposedAt = new Map<string, number>(carried?.exposedAt ?? []);
  let begun: BeginRolloutResult | undefined = carried?.begun;
  const rolloutStartedAt = carried?.startedAt ?? workflowInfo().runStartTime.getTime();
  const stepRuns = new Map<string, StepRun>(Object.entries(carried?.stepRuns ?? {}));
  /** Steps of this run waiting in a timer or a condition (nothing in flight): where it may continue as new. */
  const parked = new Set<string>();
  // The durable audit: entries queue in workflow state and an awaited activity writes them, keyed by sequence.
  const auditQueue: KeyedAuditEntry[] = [];
  let auditSeq = carried?.auditSeq ?? 0;
  let flushing = false;
  /** Set when this run has decided to continue as new: waiting steps stay put from then on. */
  let continuing = false;

  setHandler(progressQuery, (): RolloutProgress => progress());
  // child backfills report rows, rate and state: the percentage and ETA move while they run
  const children = trackChildBackfills();
  setHandler(pauseSignal, (who?: ActorPayload) => {
    isPaused = true;
    wake++;
    audit('paused', undefined, who);
    for (const s of steps.values()) if (s.state === 'running' && s.backfillWorkflowId) void signalChild(s.backfillWorkflowId, 'pause', who);
  });
  setHandler(resumeSignal, (who?: ActorPayload) => {
    isPaused = false;
    wake++;
    audit('resumed', undefined, who);
    for (const s of steps.values())
      if (s.state === 'running' && s.backfillWorkflowId) void signalChild(s.backfillWorkflowId, 'resume', who);
  });
  setHandler(approveSignal, (who?: ActorPayload) => {
    approvals++;
    wake++;
    audit('approved', undefined, who);
  });
  setHandler(
    approveUpdate,
    (who?: ActorPayload) => {
      approvals++;
      wake++;
      audit('approved', undefined, who);
      return `approved by ${who?.by ?? 'unknown'}`;
    },
    {
      validator: (who?: ActorPayload) => {
        if (who !== undefined && (typeof who !== 'object' || who === null))
          throw new Error('approveUpdate takes {"by": "...", "reason": "..."} or nothing');
        if (![...steps.values()].some((s) => roleOf(s.kind) === 'approval' && s.state === 'running'))
          throw new Error('no approval step is waiting');
      },
    },
  );
  setHandler(rollbackSignal, (who?: ActorPayload) => {
    // the operator who asked for the rollback is the actor of every revert it causes
    if (rollbackReason === null) rollbackBy = who?.by;
    rollbackReason ??= `rollback requested by ${who?.by ?? 'an operator'}${who?.reason ? `: ${who.reason}` : ''}`;
    wake++;
    audit('rollback_requested', undefined, who);
  });
  setHandler(retrySignal, (who?: ActorPayload) => {
    retries++;
    wake++;
    audit('retry_requested', undefined, who);
  });

  function progress(): RolloutProgress {
    const running = [...steps.values()]
      .filter((s) => s.state === 'running' || s.state === 'held' || s.state === 'reverting')
      .map((s) => s.id);
    return {
      kind: 'rollout',
      name: spec.name,
      tables,
      state,
      currentStep: running[0] ?? null,
      runningSteps: running,
      steps: [...steps.values()],
      rollbackReason,
      catalog,
      // percent, ETA, the running backfills; lastError only while it applies (lastRecoveredError after a retry got past it)
      ...children.figures(state, [...steps.values()], lastError),
    };
  }

  function setState(s: RolloutState, step?: string): void {
    state = s;
    setSearchState(s, step === undefined ? {} : { step });
    notify.state(s, { step, lastError, rollbackReason });
  }

  function setStep(id: string, patch: Partial<StepProgress>): void {
    const s = steps.get(id)!;
    Object.assign(s, patch);
    const running = [...steps.values()].filter((x) => x.state === 'running' || x.state === 'held').map((x) => x.id);
    setSearchState(state, { step: running.join(',') });
  }

  function nextAuditKey(): string {
    return `${begun!.rolloutId}:${++auditSeq}`;
  }

  function audit(event: string, subject?: string, who?: ActorPayload, detail?: unknown): void {
    if (durable) {
      // keyed when written (the rollout id may not be known yet); the order is the queue's; the row's time is the
      // database's, like every other audit row (`stagefill history` reads rows from the rollout's start on)
      auditQueue.push({ key: '', event, subject, detail: detail ?? (who?.reason ? { reason: who.reason } : undefined), actor: who?.by });
      return;
    }
    if (!begun) return;
    // fire and forget: the audit row is written by an activity; history holds the order
    void ddl
      .recordRolloutEvent({
        rolloutId: begun.rolloutId,
        workflowId,
        event,
        subject,
        detail: detail ?? (who?.reason ? { reason: who.reason } : undefined),
        actor: who?.by,
      })
      .catch((err) => log.warn('audit write failed', { event, error: String(err) }));
  }

  async function signalChild(childId: string, verb: 'pause' | 'resume', who?: ActorPayload): Promise<void> {
    try {
      await getExternalWorkflowHandle(childId).signal(verb === 'pause' ? pauseSignal : resumeSignal, who ?? {});
    } catch (err) {
      log.warn('could not forward signal to backfill', { childId, verb, error: String(err) });
    }
  }

  async function recordStep(g: GraphStep, s: StepProgress['state'], detail?: unknown): Promise<void> {
    setStep(g.id, { state: s, ...(isFinal(s) ? { finishedAt: new Date(now()).toISOString() } : {}) });
    const auditKey = durable ? nextAuditKey() : undefined;
    await ddl.recordStepState({
      rolloutId: begun!.rolloutId,
      workflowId,
      stepId: g.id,
      kind: g.kind,
      table: g.table,
      state: s as never,
      detail,
      actor: input.actor,
      ...(auditKey ? { auditKey } : {}),
    });
  }

  /** Writes the audit queue, oldest first, with an awaited activity that retries until it succeeds. */
  async function flushAudit(): Promise<void> {
    for (;;) {
      await condition(() => begun !== undefined && auditQueue.length > 0);
      const batch = auditQueue.slice(0, 100);
      for (const e of batch) if (!e.key) e.key = nextAuditKey();
      flushing = true;
      try {
        await revert.recordRolloutEvents({ rolloutId: begun!.rolloutId, workflowId, entries: batch });
        auditQueue.splice(0, batch.length);
      } finally {
        flushing = false;
      }
    }
  }

  const auditDrained = () => auditQueue.length === 0 && !flushing;

  /** Waits, even in a cancelled workflow, until every queued audit entry is written. */
  async function drainAudit(): Promise<void> {
    if (!durable || !begun) return;
    await CancellationScope.nonCancellable(() => condition(auditDrained));
  }

  /**
   * A step waits here: in a timer and/or a condition, nothing in flight, so
   * the run may continue as new meanwhile (the step's StepRun says how to
   * resume). Same commands as a plain condition, so old histories replay.
   */
  async function park(id: string, fn: () => boolean, timeoutMs?: number): Promise<boolean> {
    parked.add(id);
    try {
      let met: boolean;
      if (timeoutMs === undefined) {
        await condition(fn);
        met = true;
      } else if (timeoutMs <= 0) {
        met = fn();
      } else {
        met = await condition(fn, timeoutMs);
      }
      // The run decided to continue as new (on the state of an earlier job of this activation): stay put,
      // schedule nothing; the next run resumes this wait from the carried state.
      if (continuing) await new Promise<never>(() => {});
      return met;
    } finally {
      parked.delete(id);
    }
  }

  const stepInput = (g: GraphStep) => ({
    rolloutId: begun!.rolloutId,
    workflowId,
    rolloutName: spec.name,
    stepId: g.id,
    step: stepOf.get(g.id)!,
    table: g.table,
    allSteps: graph.map((x) => ({ id: x.id, table: x.table, step: stepOf.get(x.id)! })),
    actor: input.actor,
    lockTimeoutMs: spec.lockTimeoutMs,
  });

  // ---- one step ---------------------------------------------------------

  async function runStep(g: GraphStep): Promise<void> {
    const step = stepOf.get(g.id)!;
    // a step carried over from the previous run resumes its wait: it was recorded running there
    let r = stepRuns.get(g.id);
    if (!r) {
      r = { round: 0 };
      stepRuns.set(g.id, r);
      setStep(g.id, { state: 'running', startedAt: new Date(now()).toISOString() });
      await recordStep(g, 'running');
    }
    const run$ = r;
    // the step's module says how it runs; the workflow never names a kind
    const m = stepModule(step.kind);
    switch (m.role) {
      case 'schema': {
        touched.push(g.id);
        const applied = await ddl.applyStep(stepInput(g));
        if (m.startsRollbackWindow) exposedAt.set(g.table, now());
        // histories recorded before `backfills` existed hand back `backfill` alone
        for (const bf of applied.backfills ?? (applied.backfill ? [applied.backfill] : [])) await runBackfill(g, bf);
        break;
      }
      case 'contract': {
        // The rollback window runs from the newest expose on this table (or the rollout start).
        const since = exposedAt.get(g.table) ?? rolloutStartedAt;
        const waitMs = since + spec.rollbackWindow - now();
        if (waitMs > 0) {
          log.info('contract waits for the rollback window', { step: g.id, waitMs });
          if (await park(g.id, () => rollbackReason !== null, waitMs)) throw new StepFailure(rollbackReason!, true);
        }
        touched.push(g.id);
        // a contract that would drop an object without its counterpart holds (nothing dropped) for `retry` or `rollback`
        for (;;) {
          try {
            await ddl.applyStep(stepInput(g));
            break;
          } catch (err) {
            const held = heldCause(err);
            if (!held) throw err;
            lastError = held;
            setStep(g.id, { state: 'held', error: held });
            setState('held', g.id);
            await recordStep(g, 'held', { reason: held });
            const seen = retries;
            await condition(() => retries > seen || rollbackReason !== null);
            if (rollbackReason !== null) throw new StepFailure(rollbackReason, true);
            setStep(g.id, { state: 'running', error: undefined });
            setState('running');
          }
        }
        break;
      }
      case 'backfill':
        await runBackfill(g, m.backfill(step, { id: g.id, table: g.table, rolloutName: spec.name }));
        break;
      case 'gate': {
        const run = m.gate(step);
        await runGate(g, run$, run.checks, run.onFailure);
        break;
      }
      case 'soak': {
        const run = m.soak(step);
        const until = (run$.soakUntil ??= now() + run.durationMs);
        for (;;) {
          if (run$.nextCheckAt === undefined) {
            await runGate(g, run$, run.checks, run.onFailure);
            const left = until - now();
            if (left <= 0) break;
            run$.nextCheckAt = now() + Math.min(run.everyMs, left);
          }
          if (await park(g.id, () => rollbackReason !== null, run$.nextCheckAt - now())) throw new StepFailure(rollbackReason!, true);
          run$.nextCheckAt = undefined;
        }
        break;
      }
      case 'approval': {
        const run = m.approval(step);
        if (run$.approvalSeen === undefined) {
          setState('waiting_approval', g.id);
          run$.approvalSeen = approvals;
          run$.approvalDeadline = now() + run.timeoutMs;
        }
        const seen = run$.approvalSeen;
        const decided = await park(g.id, () => approvals > seen || rollbackReason !== null, run$.approvalDeadline! - now());
        if (rollbackReason !== null) throw new StepFailure(rollbackReason, true);
        if (!decided) throw new StepFailure(`approval "${g.id}" timed out after ${run.timeoutMs}ms`, run.onTimeout === 'rollback');
        setState('running');
        break;
      }
    }
    await recordStep(g, 'completed');
  }

  async function runBackfill(g: GraphStep, bf: BackfillSpec): Promise<void> {
    const childId = `${backfillWorkflowId(bf.table, bf.name)}:${workflowInfo().runId.slice(0, 8)}`;
    setStep(g.id, { backfillWorkflowId: childId });
    const child = await startChild(backfillWorkflow, {
      workflowId: childId,
      // a rollout run that reaches this step again (after a rollback) starts a fresh generation
      args: [{ spec: bf, restart: true }],
      cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      memo: { summary: { kind: 'backfill', name: bf.name, table: bf.table, rollout: spec.name, step: g.id } },
      typedSearchAttributes: initialSearchAttributes('backfill', [bf.table], bf.name),
    });
    if (isPaused) void signalChild(childId, 'pause');
    try {
      await child.result();
    } catch (err) {
      if (isCancellation(err)) throw err;
      // the child's own failure (its SQL error, the chunk range, the field), not the wrapper's "Child Workflow execution failed"
      throw new StepFailure(`step "${g.id}": backfill ${bf.name} (${childId}) failed: ${causeMessage(err)}`, true);
    }
  }

  /**
   * One gate (or one soak round): the checks until they pass. Each round is
   * its own attempt in gate_results (numbered for the whole step, across the
   * chain), so every round of a long soak stays in the audit.
   */
  async function runGate(g: GraphStep, r: StepRun, gateChecks: GateCheck[], onFailure: 'rollback' | 'pause'): Promise<void> {
    for (;;) {
      if (r.heldSeen === undefined) {
        const attempt = ++r.round;
        const results: CheckResult[] = await checks.runChecks({
          rolloutId: begun!.rolloutId,
          workflowId,
          stepId: g.id,
          table: g.table,
          checks: gateChecks,
          baselines: begun!.baselines,
          attempt,
        });
        setStep(g.id, { checks: results });
        const failed = results.filter((x) => !x.ok);
        if (!failed.length) return;
        const why = `step "${g.id}": check ${failed.map((f) => `"${f.name}" got ${f.value ?? f.error ?? 'nothing'}, expected ${f.expected}`).join('; ')}`;
        if (onFailure === 'rollback') throw new StepFailure(why, true);
        // onFailure: pause — hold for an operator: `retry` runs the checks again, `rollback` reverts.
        lastError = why;
        setStep(g.id, { state: 'held', error: why });
        setState('held', g.id);
        await recordStep(g, 'held', { checks: results });
        r.heldSeen = retries;
      }
      const seen = r.heldSeen;
      await park(g.id, () => retries > seen || rollbackReason !== null);
      r.heldSeen = undefined;
      if (rollbackReason !== null) throw new StepFailure(rollbackReason, true);
      setStep(g.id, { state: 'running', error: undefined });
      setState('running');
    }
  }

  // ---- the graph --------------------------------------------------------

  if (durable) void CancellationScope.nonCancellable(() => flushAudit());

  const done = new Set<string>(carried?.done ?? []);
  const started = new Set<string>([...done, ...(carried?.active ?? [])]);
  const scopes = new Map<string, CancellationScope>();
  let failure: StepFailure | undefined;

  /** Safe to continue as new: history long enough, every running step waiting (or none running), the audit written. */
  const shouldContinue = (): boolean => {
    if (!durable) return false;
    const info = workflowInfo();
    if (info.historyLength < eventLimit && !info.continueAsNewSuggested) return false;
    for (const id of scopes.keys()) if (!parked.has(id)) return false;
    return auditDrained();
  };

  async function continueChain(): Promise<never> {
    // decided on a condition check; from here no waiting step leaves its wait (see park)
    continuing = true;
    await drainAudit();
    const next: CarriedRollout = {
      begun: begun!,
      run: (carried?.run ?? 1) + 1,
      startedAt: rolloutStartedAt,
      state,
      lastError,
      rollbackReason,
      rollbackBy: rollbackBy ?? null,
      isPaused,
      approvals,
      retries,
      auditSeq,
      steps: [...steps.values()],
      touched,
      exposedAt: [...exposedAt],
      done: [...done],
      active: [...scopes.keys()],
      stepRuns: Object.fromEntries([...stepRuns].filter(([id]) => scopes.has(id))),
    };
    log.info('rollout continues as new', { historyLength: workflowInfo().historyLength, run: next.run, waiting: next.active });
    return continueAsNew<typeof rolloutWorkflow>({ ...input, carried: next });
  }

  function launch(g: GraphStep): void {
    started.add(g.id);
    const scope = new CancellationScope();
    scopes.set(g.id, scope);
    void scope
      .run(() => runStep(g))
      .then(
        () => done.add(g.id),
        (err) => {
          if (isCancellation(err)) {
            setStep(g.id, { state: 'cancelled' });
            return;
          }
          const msg = err instanceof StepFailure ? err.message : `step "${g.id}" failed: ${causeMessage(err)}`;
          setStep(g.id, { state: 'failed', error: msg });
          // the cause in the audit rows too (histories recorded before this wrote none)
          if (patched('step-failed-audit')) audit('step_failed', g.id, undefined, { kind: g.kind, table: g.table, error: msg });
          failure ??= err instanceof StepFailure ? err : new StepFailure(msg, true);
        },
      )
      .finally(() => {
        scopes.delete(g.id);
        wake++;
      });
  }

  try {
    if (carried) {
      // a later run of the chain: the rollout began in the first run; its waiting steps resume
      setSearchState(state, { kind: 'rollout', tables, name: spec.name, step: carried.active.join(',') });
      for (const id of carried.active) launch(graph.find((g) => g.id === id)!);
    } else {
      setSearchState('starting', { kind: 'rollout', tables, name: spec.name });
      try {
        begun = await ddl.beginRollout({ workflowId, name: spec.name, spec, tables, plan: planRollout(spec).steps, actor: input.actor });
      } catch (err) {
        lastError = failureMessage(err);
        setState('refused');
        throw ApplicationFailure.create({ message: lastError, type: FailureType.RolloutRefused, nonRetryable: true });
      }
      setState('running');
    }
    const rollout = begun!;

    const isContract = (g: GraphStep) => roleOf(g.kind) === 'contract';
    const nonContractIds = graph.filter((g) => !isContract(g)).map((g) => g.id);

    for (;;) {
      if (failure || rollbackReason !== null) break;
      // between steps, or with every running step waiting: a long history goes on in a new run
      if (shouldContinue()) await continueChain();
      if (!isPaused) {
        // contract is irreversible: it waits until every other step of the graph is done
        const ready = readySteps(graph, done, started).filter((g) => !isContract(g) || nonContractIds.every((id) => done.has(id)));
        for (const g of ready.slice(0, Math.max(0, spec.maxConcurrentSteps - scopes.size))) launch(g);
      }
      if (done.size === graph.length) break;
      if (!scopes.size && !isPaused && !readySteps(graph, done, started).length) break; // nothing can run: should not happen for a valid graph
      const seen = wake;
      await condition(() => wake !== seen || failure !== undefined || rollbackReason !== null || shouldContinue());
    }

    if (done.size === graph.length && !failure && rollbackReason === null) {
      setState('completed');
      await ddl.finishRollout({ rolloutId: rollout.rolloutId, workflowId, state: 'completed', actor: input.actor });
      await drainAudit();
      return result();
    }

    // Stop everything still running: backfills end after their current chunk.
    for (const scope of scopes.values()) scope.cancel();
    await condition(() => scopes.size === 0);

    if (failure && !failure.shouldRollback) {
      lastError = failure.message;
      setState('failed');
      await ddl.finishRollout({ rolloutId: rollout.rolloutId, workflowId, state: 'failed', reason: failure.message, actor: input.actor });
      await drainAudit();
      throw ApplicationFailure.create({ message: failure.message, type: FailureType.RolloutFailed, nonRetryable: true });
    }
    rollbackReason ??= failure!.message;
    lastError = failure?.message ?? lastError;
    await rollBack();
    await drainAudit();
    throw ApplicationFailure.create({
      message: `rolled back: ${rollbackReason}`,
      type: FailureType.RolledBack,
      nonRetryable: true,
      details: [result()],
    });
  } catch (err) {
    if (!isCancellation(err) || !begun) throw err;
    // The UI's Cancel: revert like any other rollback, even though this scope is cancelled.
    await CancellationScope.nonCancellable(async () => {
      rollbackReason ??= 'workflow cancelled';
      await rollBack('cancelled');
      await drainAudit();
    });
    throw err;
  } finally {
    await notify.settled(); // a closing run (or one continuing as new) would drop a delivery still scheduled
  }

  async function rollBack(finalState: 'rolled_back' | 'cancelled' = 'rolled_back'): Promise<void> {
    setState('rolling_back');
    audit('rollback_started', undefined, undefined, { reason: rollbackReason });
    const order = rollbackOrder(graph, touched);
    for (const id of order) {
      const g = graph.find((x) => x.id === id)!;
      if (roleOf(g.kind) === 'contract') continue; // never started unless everything else succeeded
      setStep(id, { state: 'reverting' });
      for (;;) {
        const reverted = await revert.revertStep({ ...stepInput(g), actor: rollbackBy ?? input.actor });
        if (reverted.held === undefined) break;
        // the kind refused to revert (createTable: someone else's data): hold for an operator, `retry` asks again
        lastError = `step "${id}": revert held: ${reverted.held}`;
        setState('held', id);
        await recordStep(g, 'held', { reason: reverted.held });
        setStep(id, { error: lastError });
        const seen = retries;
        await condition(() => retries > seen);
        setStep(id, { state: 'reverting', error: undefined });
        setState('rolling_back');
      }
      setStep(id, { state: 'reverted', finishedAt: new Date(now()).toISOString() });
    }
    for (const s of steps.values()) if (s.state === 'pending') setStep(s.id, { state: 'skipped' });
    const finished = await revert.finishRollout({
      rolloutId: begun!.rolloutId,
      workflowId,
      state: finalState === 'cancelled' ? 'cancelled' : 'rolled_back',
      reason: rollbackReason ?? undefined,
      actor: input.actor,
    });
    catalog = finished.catalog;
    setState(finalState === 'cancelled' ? 'cancelled' : 'rolled_back');
  }

  function result(): RolloutResult {
    return { state, steps: [...steps.values()], rollbackReason, catalog };
  }
}

/** The innermost cause's message: through activity and child-workflow wrappers to what actually failed. */
function causeMessage(err: unknown): string {
  let e: unknown = err;
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause) e = e.cause;
  return failureMessage(e);
}

/** The message of a contract's ContractHeld failure, or undefined for any other error. */
function heldCause(err: unknown): string | undefined {
  let e: unknown = err;
  while (e instanceof ActivityFailure && e.cause) e = e.cause;
  return e instanceof ApplicationFailure && e.type === FailureType.ContractHeld ? e.message : undefined;
}

function isFinal(s: StepProgress['state']): boolean {
  return s === 'completed' || s === 'failed' || s === 'reverted' || s === 'skipped' || s === 'cancelled';
}
