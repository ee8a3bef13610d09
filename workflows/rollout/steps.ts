/**
 * One step of a rollout, run as its kind's module says (schema, contract,
 * backfill, gate, soak, approval), and where a step waits (park). A step
 * raises StepFailure to start a rollback; its state, rows and audit go
 * through rollout-run.ts. Deterministic.
 */
import {
  workflowInfo,
  condition,
  patched,
  isCancellation,
  startChild,
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  log,
} from '@temporalio/workflow';
import type { CheckResult } from '../../activities/rollout/index';
import type { GraphStep } from '../../steps/graph';
import { backfillWorkflowId } from '../../core/common/ids';
import { causeMessage, heldCause } from '../failure-cause';
import { stepModule } from '../../steps';
import { backfillWorkflow } from '../backfill/workflow';
import { initialSearchAttributes } from '../search-attributes';
import { ddl, checks } from './activities';
import type { RolloutRun, StepRun } from './run';
import { StepFailure, now, setState, setStep, recordStep, stepInput, signalChild } from './run';
import type { BackfillSpec, GateCheck } from '../../core/common/fields';

/**
 * A step waits here: in a timer and/or a condition, nothing in flight, so
 * the run may continue as new meanwhile (the step's StepRun says how to
 * resume). Same commands as a plain condition, so old histories replay.
 */
async function park(run: RolloutRun, id: string, fn: () => boolean, timeoutMs?: number): Promise<boolean> {
  run.parked.add(id);
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
    if (run.continuing) await new Promise<never>(() => {});
    return met;
  } finally {
    run.parked.delete(id);
  }
}

export async function runStep(run: RolloutRun, g: GraphStep): Promise<void> {
  // size: one step's run in the order its commands are issued (apply, backfills, gate, soak, approval, contract's window), which replay checks
  const { spec } = run;
  const step = run.stepOf.get(g.id)!;
  // a step carried over from the previous run resumes its wait: it was recorded running there
  let r = run.stepRuns.get(g.id);
  if (!r) {
    r = { round: 0 };
    run.stepRuns.set(g.id, r);
    setStep(run, g.id, { state: 'running', startedAt: new Date(now()).toISOString() });
    await recordStep(run, g, 'running');
  }
  const run$ = r;
  // the step's module says how it runs; the workflow never names a kind
  const m = stepModule(step.kind);
  switch (m.role) {
    case 'schema': {
      run.touched.push(g.id);
      const applied = await ddl.applyStep(stepInput(run, g));
      if (m.startsRollbackWindow) run.exposedAt.set(g.table, now());
      // histories recorded before `backfills` existed hand back `backfill` alone
      for (const bf of applied.backfills ?? (applied.backfill ? [applied.backfill] : [])) await runBackfill(run, g, bf);
      // the kind's work once its data is there (alterColumn's concurrent index builds), so its contract is short
      if (applied.finishAfterBackfills && patched('finish-step-after-backfills')) await ddl.finishStep(stepInput(run, g));
      break;
    }
    case 'contract': {
      // The rollback window runs from the newest expose on this table (or the rollout start).
      const since = run.exposedAt.get(g.table) ?? run.startedAt;
      const waitMs = since + spec.rollbackWindow - now();
      if (waitMs > 0) {
        log.info('contract waits for the rollback window', { step: g.id, waitMs });
        // with live states it shows: `waiting_window`, and until when (progress's rollbackWindow)
        if (run.liveStates) {
          run$.windowEndsAt = since + spec.rollbackWindow;
          setState(run, 'waiting_window', g.id);
        }
        if (await park(run, g.id, () => run.rollbackReason !== null, waitMs)) throw new StepFailure(run.rollbackReason!, true);
        if (run.liveStates) {
          run$.windowEndsAt = undefined;
          // another table's contract may still wait for its own window
          if (![...run.stepRuns.values()].some((x) => x.windowEndsAt !== undefined)) setState(run, 'running');
        }
      }
      // a contract resumed by the next run of the chain was touched already
      if (!run.touched.includes(g.id)) run.touched.push(g.id);
      // a contract that would drop an object without its counterpart holds (nothing dropped) for `retry` or `rollback`
      for (;;) {
        if (run$.heldSeen === undefined) {
          try {
            await ddl.applyStep(stepInput(run, g));
            break;
          } catch (err) {
            const held = heldCause(err);
            if (!held) throw err;
            // counted before 'held' shows: a retry sent while the hold is being recorded is not lost
            const seen = run.retries;
            run.lastError = held;
            setStep(run, g.id, { state: 'held', error: held });
            setState(run, 'held', g.id);
            await recordStep(run, g, 'held', { reason: held });
            if (!run.liveStates) {
              // runs recorded before live states wait in a plain condition and never continue as new while held
              await condition(() => run.retries > seen || run.rollbackReason !== null);
              if (run.rollbackReason !== null) throw new StepFailure(run.rollbackReason, true);
              setStep(run, g.id, { state: 'running', error: undefined });
              setState(run, 'running');
              continue;
            }
            run$.heldSeen = seen;
          }
        }
        // held like a gate: a long hold continues as new, the next run resumes this wait (heldSeen is carried)
        const seen = run$.heldSeen;
        await park(run, g.id, () => run.retries > seen || run.rollbackReason !== null);
        run$.heldSeen = undefined;
        if (run.rollbackReason !== null) throw new StepFailure(run.rollbackReason, true);
        setStep(run, g.id, { state: 'running', error: undefined });
        setState(run, 'running');
      }
      break;
    }
    case 'backfill':
      await runBackfill(run, g, m.backfill(step, { id: g.id, table: g.table, rolloutName: spec.name }));
      break;
    case 'gate': {
      const gate = m.gate(step);
      await runGate(run, g, run$, gate.checks, gate.onFailure);
      break;
    }
    case 'soak': {
      const soak = m.soak(step);
      const until = (run$.soakUntil ??= now() + soak.durationMs);
      for (;;) {
        if (run$.nextCheckAt === undefined) {
          await runGate(run, g, run$, soak.checks, soak.onFailure);
          const left = until - now();
          if (left <= 0) break;
          run$.nextCheckAt = now() + Math.min(soak.everyMs, left);
        }
        if (await park(run, g.id, () => run.rollbackReason !== null, run$.nextCheckAt - now()))
          throw new StepFailure(run.rollbackReason!, true);
        run$.nextCheckAt = undefined;
      }
      break;
    }
    case 'approval': {
      const approval = m.approval(step);
      if (run$.approvalSeen === undefined) {
        setState(run, 'waiting_approval', g.id);
        run$.approvalSeen = run.approvals;
        run$.approvalDeadline = now() + approval.timeoutMs;
      }
      const seen = run$.approvalSeen;
      const decided = await park(run, g.id, () => run.approvals > seen || run.rollbackReason !== null, run$.approvalDeadline! - now());
      if (run.rollbackReason !== null) throw new StepFailure(run.rollbackReason, true);
      if (!decided) throw new StepFailure(`approval "${g.id}" timed out after ${approval.timeoutMs}ms`, approval.onTimeout === 'rollback');
      setState(run, 'running');
      break;
    }
  }
  await recordStep(run, g, 'completed');
}

/** Patch name: a step's backfill id carries the rollout's whole run id. */
export const UNIQUE_BACKFILL_ID = 'backfill-id-whole-run-id';

/** A backfill of a step, as a child workflow; pause and resume reach it through the rollout's handlers. */
async function runBackfill(run: RolloutRun, g: GraphStep, bf: BackfillSpec): Promise<void> {
  // Patch: the whole run id. Its first 8 characters are a timestamp (run ids are UUIDv7): two rollouts of the same
  // spec started within a minute (a fleet's targets) gave their backfills one id, and the second one's step failed.
  const runId = workflowInfo().runId;
  const childId = `${backfillWorkflowId(bf.table, bf.name)}:${patched(UNIQUE_BACKFILL_ID) ? runId : runId.slice(0, 8)}`;
  setStep(run, g.id, { backfillWorkflowId: childId });
  const child = await startChild(backfillWorkflow, {
    workflowId: childId,
    // a rollout run that reaches this step again (after a rollback) starts a fresh generation
    // a fleet target's backfill sends its activities where the rollout sends its own
    args: [{ spec: bf, restart: true, ...(run.input.activityQueue ? { activityQueue: run.input.activityQueue } : {}) }],
    cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
    parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    memo: { summary: { kind: 'backfill', name: bf.name, table: bf.table, rollout: run.spec.name, step: g.id } },
    typedSearchAttributes: initialSearchAttributes('backfill', [bf.table], bf.name),
  });
  if (run.isPaused) void signalChild(childId, 'pause');
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
async function runGate(run: RolloutRun, g: GraphStep, r: StepRun, gateChecks: GateCheck[], onFailure: 'rollback' | 'pause'): Promise<void> {
  for (;;) {
    if (r.heldSeen === undefined) {
      const attempt = ++r.round;
      const results: CheckResult[] = await checks.runChecks({
        rolloutId: run.begun!.rolloutId,
        workflowId: run.workflowId,
        stepId: g.id,
        table: g.table,
        checks: gateChecks,
        baselines: run.begun!.baselines,
        attempt,
      });
      setStep(run, g.id, { checks: results });
      const failed = results.filter((x) => !x.ok);
      if (!failed.length) return;
      const why = `step "${g.id}": check ${failed.map((f) => `"${f.name}" got ${f.value ?? f.error ?? 'nothing'}, expected ${f.expected}`).join('; ')}`;
      if (onFailure === 'rollback') throw new StepFailure(why, true);
      // onFailure: pause — hold for an operator: `retry` runs the checks again, `rollback` reverts.
      // counted before 'held' shows: a retry sent while the hold is being recorded is not lost
      r.heldSeen = run.retries;
      run.lastError = why;
      setStep(run, g.id, { state: 'held', error: why });
      setState(run, 'held', g.id);
      await recordStep(run, g, 'held', { checks: results });
    }
    const seen = r.heldSeen;
    await park(run, g.id, () => run.retries > seen || run.rollbackReason !== null);
    r.heldSeen = undefined;
    if (run.rollbackReason !== null) throw new StepFailure(run.rollbackReason, true);
    setStep(run, g.id, { state: 'running', error: undefined });
    setState(run, 'running');
  }
}
