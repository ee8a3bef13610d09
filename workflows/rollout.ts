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
} from '@temporalio/workflow';
import type { RolloutActivities, CheckResult, BeginRolloutResult } from '../activities/rollout';
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

export interface RolloutWorkflowInput {
  spec: RolloutSpec;
  /** Who started it, for the audit trail. */
  actor?: string;
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
  const { spec } = input;
  const workflowId = workflowInfo().workflowId;
  const graph: GraphStep[] = normalizeGraph(spec.steps, qualifiedName(spec.table)).map((g) => ({ ...g, table: qualifiedName(g.table) }));
  const stepOf = new Map(graph.map((g, i) => [g.id, spec.steps[i]]));
  const tables = [...new Set(graph.map((g) => g.table))];
  const now = () => Date.now(); // the workflow task's deterministic time

  let state: RolloutState = 'starting';
  let lastError: string | null = null;
  let rollbackReason: string | null = null;
  /** Who asked for the rollback (the rollback signal's actor); reverts and the finish are recorded in their name. */
  let rollbackBy: string | undefined;
  let catalog: RolloutResult['catalog'];
  let isPaused = false;
  let approvals = 0;
  let retries = 0;
  let wake = 0; // bumped by every handler, so conditions re-check
  const steps = new Map<string, StepProgress>(graph.map((g) => [g.id, { id: g.id, kind: g.kind, table: g.table, dependsOn: g.dependsOn, state: 'pending' }]));
  /** Steps whose effect reached the database (even partly), in the order they started: what a rollback reverts. */
  const touched: string[] = [];
  const exposedAt = new Map<string, number>();
  let begun: BeginRolloutResult | undefined;

  setHandler(progressQuery, (): RolloutProgress => progress());
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
    for (const s of steps.values()) if (s.state === 'running' && s.backfillWorkflowId) void signalChild(s.backfillWorkflowId, 'resume', who);
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
        if (who !== undefined && (typeof who !== 'object' || who === null)) throw new Error('approveUpdate takes {"by": "...", "reason": "..."} or nothing');
        if (![...steps.values()].some((s) => roleOf(s.kind) === 'approval' && s.state === 'running')) throw new Error('no approval step is waiting');
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
    const running = [...steps.values()].filter((s) => s.state === 'running' || s.state === 'held' || s.state === 'reverting').map((s) => s.id);
    return {
      kind: 'rollout',
      name: spec.name,
      tables,
      state,
      currentStep: running[0] ?? null,
      runningSteps: running,
      steps: [...steps.values()],
      lastError,
      rollbackReason,
      catalog,
    };
  }

  function setState(s: RolloutState, step?: string): void {
    state = s;
    setSearchState(s, step === undefined ? {} : { step });
  }

  function setStep(id: string, patch: Partial<StepProgress>): void {
    const s = steps.get(id)!;
    Object.assign(s, patch);
    const running = [...steps.values()].filter((x) => x.state === 'running' || x.state === 'held').map((x) => x.id);
    setSearchState(state, { step: running.join(',') });
  }

  function audit(event: string, subject?: string, who?: ActorPayload, detail?: unknown): void {
    if (!begun) return;
    // fire and forget: the audit row is written by an activity; history holds the order
    void ddl
      .recordRolloutEvent({ rolloutId: begun.rolloutId, workflowId, event, subject, detail: detail ?? (who?.reason ? { reason: who.reason } : undefined), actor: who?.by })
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
    await ddl.recordStepState({ rolloutId: begun!.rolloutId, workflowId, stepId: g.id, kind: g.kind, table: g.table, state: s as never, detail, actor: input.actor });
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
    setStep(g.id, { state: 'running', startedAt: new Date(now()).toISOString() });
    await recordStep(g, 'running');
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
        const since = exposedAt.get(g.table) ?? workflowInfo().runStartTime.getTime();
        const waitMs = since + spec.rollbackWindow - now();
        if (waitMs > 0) {
          log.info('contract waits for the rollback window', { step: g.id, waitMs });
          if (await condition(() => rollbackReason !== null, waitMs)) throw new StepFailure(rollbackReason!, true);
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
        await runGate(g, run.checks, run.onFailure);
        break;
      }
      case 'soak': {
        const run = m.soak(step);
        const until = now() + run.durationMs;
        for (;;) {
          await runGate(g, run.checks, run.onFailure);
          const left = until - now();
          if (left <= 0) break;
          if (await condition(() => rollbackReason !== null, Math.min(run.everyMs, left))) throw new StepFailure(rollbackReason!, true);
        }
        break;
      }
      case 'approval': {
        const run = m.approval(step);
        setState('waiting_approval', g.id);
        const seen = approvals;
        const decided = await condition(() => approvals > seen || rollbackReason !== null, run.timeoutMs);
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

  async function runGate(g: GraphStep, gateChecks: GateCheck[], onFailure: 'rollback' | 'pause'): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const results: CheckResult[] = await checks.runChecks({ rolloutId: begun!.rolloutId, workflowId, stepId: g.id, table: g.table, checks: gateChecks, baselines: begun!.baselines, attempt });
      setStep(g.id, { checks: results });
      const failed = results.filter((r) => !r.ok);
      if (!failed.length) return;
      const why = `step "${g.id}": check ${failed.map((f) => `"${f.name}" got ${f.value ?? f.error ?? 'nothing'}, expected ${f.expected}`).join('; ')}`;
      if (onFailure === 'rollback') throw new StepFailure(why, true);
      // onFailure: pause — hold for an operator: `retry` runs the checks again, `rollback` reverts.
      lastError = why;
      setStep(g.id, { state: 'held', error: why });
      setState('held', g.id);
      await recordStep(g, 'held', { checks: results });
      const seen = retries;
      await condition(() => retries > seen || rollbackReason !== null);
      if (rollbackReason !== null) throw new StepFailure(rollbackReason, true);
      setStep(g.id, { state: 'running', error: undefined });
      setState('running');
    }
  }

  // ---- the graph --------------------------------------------------------

  try {
    setSearchState('starting', { kind: 'rollout', tables, name: spec.name });
    try {
      begun = await ddl.beginRollout({ workflowId, name: spec.name, spec, tables, plan: planRollout(spec).steps, actor: input.actor });
    } catch (err) {
      lastError = failureMessage(err);
      setState('refused');
      throw ApplicationFailure.create({ message: lastError, type: FailureType.RolloutRefused, nonRetryable: true });
    }
    setState('running');

    const done = new Set<string>();
    const started = new Set<string>();
    const scopes = new Map<string, CancellationScope>();
    let failure: StepFailure | undefined;
    const isContract = (g: GraphStep) => roleOf(g.kind) === 'contract';
    const nonContractIds = graph.filter((g) => !isContract(g)).map((g) => g.id);

    for (;;) {
      if (failure || rollbackReason !== null) break;
      if (!isPaused) {
        // contract is irreversible: it waits until every other step of the graph is done
        const ready = readySteps(graph, done, started).filter((g) => !isContract(g) || nonContractIds.every((id) => done.has(id)));
        for (const g of ready.slice(0, Math.max(0, spec.maxConcurrentSteps - scopes.size))) {
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
      }
      if (done.size === graph.length) break;
      if (!scopes.size && !isPaused && !readySteps(graph, done, started).length) break; // nothing can run: should not happen for a valid graph
      const seen = wake;
      await condition(() => wake !== seen || failure !== undefined || rollbackReason !== null);
    }

    if (done.size === graph.length && !failure && rollbackReason === null) {
      setState('completed');
      await ddl.finishRollout({ rolloutId: begun.rolloutId, workflowId, state: 'completed', actor: input.actor });
      return result();
    }

    // Stop everything still running: backfills end after their current chunk.
    for (const scope of scopes.values()) scope.cancel();
    await condition(() => scopes.size === 0);

    if (failure && !failure.shouldRollback) {
      lastError = failure.message;
      setState('failed');
      await ddl.finishRollout({ rolloutId: begun.rolloutId, workflowId, state: 'failed', reason: failure.message, actor: input.actor });
      throw ApplicationFailure.create({ message: failure.message, type: FailureType.RolloutFailed, nonRetryable: true });
    }
    rollbackReason ??= failure!.message;
    lastError = failure?.message ?? lastError;
    await rollBack();
    throw ApplicationFailure.create({ message: `rolled back: ${rollbackReason}`, type: FailureType.RolledBack, nonRetryable: true, details: [result()] });
  } catch (err) {
    if (!isCancellation(err) || !begun) throw err;
    // The UI's Cancel: revert like any other rollback, even though this scope is cancelled.
    await CancellationScope.nonCancellable(async () => {
      rollbackReason ??= 'workflow cancelled';
      await rollBack('cancelled');
    });
    throw err;
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
    const finished = await revert.finishRollout({ rolloutId: begun!.rolloutId, workflowId, state: finalState === 'cancelled' ? 'cancelled' : 'rolled_back', reason: rollbackReason ?? undefined, actor: input.actor });
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
