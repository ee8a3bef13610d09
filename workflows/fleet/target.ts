/**
 * One target of a fleet: runs the fleet's change (the existing rollout or
 * backfill workflow) as its child, with every database activity sent to the
 * target's task queue, where a worker holding the target's connection serves
 * it, and reports the end to the fleet. Forwards the fleet's pause, resume and
 * rollback to the change, even when they arrive before it has started.
 * Deterministic.
 */
import type { ChildWorkflowHandle, Workflow } from '@temporalio/workflow';
import { setHandler, startChild, getExternalWorkflowHandle, ParentClosePolicy, log } from '@temporalio/workflow';
import { ApplicationFailure, ChildWorkflowFailure } from '@temporalio/common';
import type { Spec } from '../../steps/spec';
import { FailureType } from '../../core/common/failures';
import { qualifiedName } from '../../core/common/table-name';
import { rolloutTables } from '../../steps/summary';
import type { ActorPayload } from '../definitions';
import { pauseSignal, resumeSignal, rollbackSignal } from '../definitions';
import { SA, initialSearchAttributes } from '../search-attributes';
import { causeMessage } from '../failure-cause';
import type { TargetFinished } from './definitions';
import { targetFinishedSignal } from './definitions';

export interface FleetTargetInput {
  fleetWorkflowId: string;
  fleetName: string;
  target: string;
  attempt: number;
  change: Spec;
  changeWorkflowId: string;
  actor?: string;
  /** The target's activity queue: its change's workflows run here, on the fleet's queue, and its database activities there. Unset (fleets from before): all on this workflow's queue. */
  activityQueue?: string;
  /** A scheduled firing's backfill: stop this long after it starts, at the firing's window end (the next firing continues). */
  runForMs?: number;
}

export async function fleetTargetWorkflow(input: FleetTargetInput): Promise<TargetFinished> {
  let child: ChildWorkflowHandle<Workflow> | undefined;
  let rollbackBy: ActorPayload | undefined;
  let isPaused = false;
  const forward = (signal: typeof pauseSignal, who?: ActorPayload) => {
    if (child) void child.signal(signal, who).catch((err) => log.warn('signal to the change failed', { error: String(err) }));
  };
  setHandler(rollbackSignal, (who?: ActorPayload) => {
    rollbackBy ??= who ?? {};
    forward(rollbackSignal, who);
  });
  setHandler(pauseSignal, (who?: ActorPayload) => {
    isPaused = true;
    forward(pauseSignal, who);
  });
  setHandler(resumeSignal, (who?: ActorPayload) => {
    isPaused = false;
    forward(resumeSignal, who);
  });

  const { change } = input;
  const tables = change.kind === 'rollout' ? rolloutTables(change) : [qualifiedName(change.table)];
  let outcome: TargetFinished;
  try {
    // REQUEST_CANCEL: a cancelled target reverts its change the way a cancelled rollout does
    child = await startChild<Workflow>(change.kind === 'rollout' ? 'rolloutWorkflow' : 'backfillWorkflow', {
      workflowId: input.changeWorkflowId,
      args: [
        change.kind === 'rollout'
          ? { spec: change, actor: input.actor, activityQueue: input.activityQueue }
          : { spec: change, activityQueue: input.activityQueue, ...(input.runForMs !== undefined ? { runForMs: input.runForMs } : {}) },
      ],
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      typedSearchAttributes: [...initialSearchAttributes(change.kind, tables, change.name), { key: SA.fleet, value: input.fleetName }],
      memo: { fleet: input.fleetWorkflowId, target: input.target, startedBy: input.actor },
    });
    if (rollbackBy) forward(rollbackSignal, rollbackBy);
    else if (isPaused) forward(pauseSignal);
    const result = (await child.result()) as { state?: string } | undefined;
    outcome = {
      target: input.target,
      attempt: input.attempt,
      state: 'completed',
      ...(result?.state === 'window_closed' ? { windowClosed: true } : {}),
    };
  } catch (err) {
    const cause = causeMessage(err);
    const rolledBack =
      err instanceof ChildWorkflowFailure && err.cause instanceof ApplicationFailure && err.cause.type === FailureType.RolledBack;
    outcome = { target: input.target, attempt: input.attempt, state: rolledBack && rollbackBy ? 'rolled_back' : 'failed', cause };
  }
  await getExternalWorkflowHandle(input.fleetWorkflowId)
    .signal(targetFinishedSignal, outcome)
    .catch((err) => log.warn('the fleet did not take the outcome', { error: String(err) }));
  return outcome;
}
