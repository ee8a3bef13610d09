import { condition, setHandler, CancellationScope, isCancellation, ApplicationFailure, patched } from '@temporalio/workflow';
import type { GraphStep } from '../../steps/graph';
import { readySteps } from '../../steps/graph';
import { planRollout } from '../../steps/describe';
import { FailureType } from '../../core/common/failures';
import { causeMessage, failureMessage } from '../failure-cause';
import { roleOf } from '../../steps';
import type { ActorPayload, RolloutProgress } from '../definitions';
import { pauseSignal, resumeSignal, approveSignal, approveUpdate, rollbackSignal, retrySignal, progressQuery } from '../definitions';
import { setSearchState } from '../search-state';
import { ddl } from './activities';
import type { RolloutWorkflowInput, RolloutResult, RolloutRun } from './run';
import { StepFailure, newRolloutRun, progress, result, setState, setStep, signalChild, shownState, refreshShownState } from './run';
import { runStep } from './steps';
import { rollBack } from './rollback';
import { shouldContinue, continueChain, quiesce, QUIET_CLOSE } from './chain';
import { trackChildBackfills } from './child-progress';
import { routeActivities } from '../activity-route';

/** Patch: the search attribute shows a pause, a backfill's hold and the rollback window; state changes get audit rows; a rollback's row comes first. */
const LIVE_STATES = 'rollout-live-states';

/**
 * A rollout: the spec's steps as a dependency graph. Ready steps start as soon
 * as what they depend on completes (up to maxConcurrentSteps at once); any
 * failure stops new steps, cancels running ones (a backfill after its current
 * chunk) and reverts every step that touched the schema, newest dependents
 * first. Every database effect is an idempotent activity, so a crash at any
 * point replays to the same place and never applies or reverts a step twice.
 * The parts: run.ts (state, progress, step states), audit.ts (the durable
 * audit), steps.ts (one step), rollback.ts, chain.ts (continue-as-new).
 */
export async function rolloutWorkflow(input: RolloutWorkflowInput): Promise<RolloutResult> {
  // size: the workflow's main loop: its signal handlers and state are closures over one run, and the order of its commands is what replay checks
  // a fleet target's change: its database activities go to the target's queue (unset: this workflow's own)
  routeActivities(input.activityQueue);
  // Runs recorded before it fire their audit writes from signal handlers and never continue as new.
  const durable = patched('durable-audit-continue-as-new');
  // the search attribute follows what an operator sees, state changes are audited (rollout-run.ts liveStates)
  const liveStates = durable && patched(LIVE_STATES);
  // child backfills report rows, rate and state: the percentage and ETA move while they run (and a hold shows)
  const run: RolloutRun = newRolloutRun(
    input,
    durable,
    trackChildBackfills(() => refreshShownState(run)),
    liveStates,
  );
  const { spec, carried, graph, tables, workflowId, steps, audit, scopes, done, started } = run;

  setHandler(progressQuery, (): RolloutProgress => progress(run));
  setHandler(pauseSignal, (who?: ActorPayload) => {
    run.isPaused = true;
    run.wake++;
    audit.record('paused', undefined, who);
    refreshShownState(run);
    for (const s of steps.values()) if (s.state === 'running' && s.backfillWorkflowId) void signalChild(s.backfillWorkflowId, 'pause', who);
  });
  setHandler(resumeSignal, (who?: ActorPayload) => {
    run.isPaused = false;
    run.wake++;
    audit.record('resumed', undefined, who);
    refreshShownState(run);
    for (const s of steps.values())
      if (s.state === 'running' && s.backfillWorkflowId) void signalChild(s.backfillWorkflowId, 'resume', who);
  });
  setHandler(approveSignal, (who?: ActorPayload) => {
    run.approvals++;
    run.wake++;
    audit.record('approved', undefined, who);
  });
  setHandler(
    approveUpdate,
    (who?: ActorPayload) => {
      run.approvals++;
      run.wake++;
      audit.record('approved', undefined, who);
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
    if (run.rollbackReason === null) run.rollbackBy = who?.by;
    run.rollbackReason ??= `rollback requested by ${who?.by ?? 'an operator'}${who?.reason ? `: ${who.reason}` : ''}`;
    run.wake++;
    audit.record('rollback_requested', undefined, who);
  });
  setHandler(retrySignal, (who?: ActorPayload) => {
    run.retries++;
    run.wake++;
    audit.record('retry_requested', undefined, who);
  });

  // ---- the graph --------------------------------------------------------

  if (durable) void CancellationScope.nonCancellable(() => audit.flush());

  let failure: StepFailure | undefined;

  function launch(g: GraphStep): void {
    started.add(g.id);
    const scope = new CancellationScope();
    scopes.set(g.id, scope);
    void scope
      .run(() => runStep(run, g))
      .then(
        () => done.add(g.id),
        (err) => {
          if (isCancellation(err)) {
            setStep(run, g.id, { state: 'cancelled' });
            return;
          }
          const msg = err instanceof StepFailure ? err.message : `step "${g.id}" failed: ${causeMessage(err)}`;
          setStep(run, g.id, { state: 'failed', error: msg });
          // the cause in the audit rows too (histories recorded before this wrote none)
          if (patched('step-failed-audit')) audit.record('step_failed', g.id, undefined, { kind: g.kind, table: g.table, error: msg });
          failure ??= err instanceof StepFailure ? err : new StepFailure(msg, true);
        },
      )
      .finally(() => {
        scopes.delete(g.id);
        run.wake++;
      });
  }

  try {
    if (carried) {
      // a later run of the chain: the rollout began in the first run; its waiting steps resume
      run.shownSa = liveStates ? shownState(run) : run.state;
      setSearchState(run.shownSa, { kind: 'rollout', tables, name: spec.name, step: carried.active.join(',') });
      for (const id of carried.active) launch(graph.find((g) => g.id === id)!);
    } else {
      setSearchState('starting', { kind: 'rollout', tables, name: spec.name });
      try {
        run.begun = await ddl.beginRollout({
          workflowId,
          name: spec.name,
          spec,
          tables,
          plan: planRollout(spec).steps,
          actor: input.actor,
        });
      } catch (err) {
        run.lastError = failureMessage(err);
        setState(run, 'refused');
        throw ApplicationFailure.create({ message: run.lastError, type: FailureType.RolloutRefused, nonRetryable: true });
      }
      setState(run, 'running');
    }
    const rollout = run.begun!;

    const isContract = (g: GraphStep) => roleOf(g.kind) === 'contract';
    const nonContractIds = graph.filter((g) => !isContract(g)).map((g) => g.id);

    for (;;) {
      if (failure || run.rollbackReason !== null) break;
      // between steps, or with every running step waiting: a long history goes on in a new run
      if (shouldContinue(run)) await continueChain(run);
      if (!run.isPaused) {
        // contract is irreversible: it waits until every other step of the graph is done
        const ready = readySteps(graph, done, started).filter((g) => !isContract(g) || nonContractIds.every((id) => done.has(id)));
        for (const g of ready.slice(0, Math.max(0, spec.maxConcurrentSteps - scopes.size))) launch(g);
      }
      if (done.size === graph.length) break;
      if (!scopes.size && !run.isPaused && !readySteps(graph, done, started).length) break; // nothing can run: should not happen for a valid graph
      const seen = run.wake;
      await condition(() => run.wake !== seen || failure !== undefined || run.rollbackReason !== null || shouldContinue(run));
    }

    if (done.size === graph.length && !failure && run.rollbackReason === null) {
      setState(run, 'completed');
      await ddl.finishRollout({ rolloutId: rollout.rolloutId, workflowId, state: 'completed', actor: input.actor });
      await audit.drain();
      return result(run);
    }

    // Stop everything still running: backfills end after their current chunk.
    for (const scope of scopes.values()) scope.cancel();
    await condition(() => scopes.size === 0);

    if (failure && !failure.shouldRollback) {
      run.lastError = failure.message;
      setState(run, 'failed');
      await ddl.finishRollout({ rolloutId: rollout.rolloutId, workflowId, state: 'failed', reason: failure.message, actor: input.actor });
      await audit.drain();
      throw ApplicationFailure.create({ message: failure.message, type: FailureType.RolloutFailed, nonRetryable: true });
    }
    run.rollbackReason ??= failure!.message;
    run.lastError = failure?.message ?? run.lastError;
    await rollBack(run);
    await audit.drain();
    throw ApplicationFailure.create({
      message: `rolled back: ${run.rollbackReason}`,
      type: FailureType.RolledBack,
      nonRetryable: true,
      details: [result(run)],
    });
  } catch (err) {
    if (!isCancellation(err) || !run.begun) throw err;
    // The UI's Cancel: revert like any other rollback, even though this scope is cancelled.
    await CancellationScope.nonCancellable(async () => {
      run.rollbackReason ??= 'workflow cancelled';
      await rollBack(run, 'cancelled');
      await audit.drain();
    });
    throw err;
  } finally {
    // a closing run (or one continuing as new) would drop a delivery still scheduled, and an audit entry of a signal
    // handled while it ran
    if (patched(QUIET_CLOSE)) await quiesce(run);
    else await run.notify.settled();
  }
}
