import type { WorkflowStartOptions } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy } from '@temporalio/client';
import type { StagefillConnection } from './connection';
import { AlreadyRunningError } from './errors';

export interface StartedRun {
  workflowId: string;
  runId: string;
}

export interface StartWorkflowOptions {
  workflowType: 'backfillWorkflow' | 'rolloutWorkflow' | 'fleetWorkflow';
  workflowId: string;
  input: unknown;
  memo: Record<string, unknown>;
  searchAttributes: WorkflowStartOptions['typedSearchAttributes'];
  /** What the operator reads when a run of this id is already running. */
  alreadyRunning: string;
}

/**
 * The one way the client starts a run: a closed run of the same id may be
 * started again (a backfill continues from its checkpoints), a running one is
 * refused with AlreadyRunningError.
 */
export async function startWorkflow(conn: StagefillConnection, opts: StartWorkflowOptions): Promise<StartedRun> {
  try {
    const handle = await conn.client.workflow.start(opts.workflowType, {
      taskQueue: conn.taskQueue,
      workflowId: opts.workflowId,
      args: [opts.input],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      memo: opts.memo,
      typedSearchAttributes: opts.searchAttributes,
    });
    return { workflowId: opts.workflowId, runId: handle.firstExecutionRunId };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw new AlreadyRunningError(opts.alreadyRunning, opts.workflowId);
    throw err;
  }
}
