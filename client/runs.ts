import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy } from '@temporalio/client';
import type { Spec, BackfillSpec, RolloutSpec } from '../spec';
import { rolloutWorkflowId, qualifiedName } from '../plan/ids';
import { planRollout } from '../plan/describe';
import { SA } from '../workflows/search-attributes';
import type { RolloutWorkflowInput } from '../workflows/rollout';
import type { StagefillConnection } from './connection';
import { startBackfill, StartedRun, StartBackfillOptions, AlreadyRunningError, defaultActor } from './operations';

export interface StartRolloutOptions {
  workflowId?: string;
  actor?: string;
}

/** The rollout's summary in the workflow memo: what the Temporal UI shows beside the run. */
export function rolloutSummary(spec: RolloutSpec): Record<string, unknown> {
  const plan = planRollout(spec);
  return {
    kind: 'rollout',
    name: spec.name,
    tables: plan.tables,
    steps: plan.steps.map((s) => `${s.id}: ${s.kind} on ${s.table}`),
    rollbackWindow: spec.rollbackWindow,
  };
}

/**
 * Starts a rollout. Its id derives from its name, so a second start of the same
 * rollout while one runs is refused here; a second rollout on a table that one
 * is changing is refused by the workflow itself (a durable lock per table).
 */
export async function startRollout(conn: StagefillConnection, spec: RolloutSpec, opts: StartRolloutOptions = {}): Promise<StartedRun> {
  const workflowId = opts.workflowId ?? rolloutWorkflowId(spec.name);
  const actor = opts.actor ?? defaultActor();
  const input: RolloutWorkflowInput = { spec, actor };
  const tables = [...new Set([spec.table, ...spec.steps.map((s) => s.table ?? spec.table)].map(qualifiedName))];
  try {
    const handle = await conn.client.workflow.start('rolloutWorkflow', {
      taskQueue: conn.taskQueue,
      workflowId,
      args: [input],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      memo: { summary: rolloutSummary(spec), startedBy: actor },
      typedSearchAttributes: [
        { key: SA.kind, value: 'rollout' },
        { key: SA.tables, value: tables },
        { key: SA.state, value: 'starting' },
        { key: SA.name, value: spec.name },
      ],
    });
    return { workflowId, runId: handle.firstExecutionRunId };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new AlreadyRunningError(`rollout "${spec.name}" is already running as ${workflowId}; watch it, roll it back, or wait for it`, workflowId);
    }
    throw err;
  }
}

/** Starts whatever kind of run the spec describes. */
export async function startRun(conn: StagefillConnection, spec: Spec, opts: StartBackfillOptions & StartRolloutOptions = {}): Promise<StartedRun> {
  switch (spec.kind) {
    case 'backfill':
      return startBackfill(conn, spec as BackfillSpec, opts);
    case 'rollout':
      return startRollout(conn, spec as RolloutSpec, opts);
  }
}
