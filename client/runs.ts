import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy } from '@temporalio/client';
import type { Spec, BackfillSpec, RolloutSpec } from '../spec';
import { rolloutWorkflowId, qualifiedName } from '../plan/ids';
import { planRollout } from '../plan/describe';
import { initialSearchAttributes } from '../workflows/search-attributes';
import type { RolloutWorkflowInput } from '../workflows/rollout';
import type { StagefillConnection } from './connection';
import { parseBackfillSpec } from '../spec';
import { createPool } from '../db/pool';
import { findBackfillsByName } from '../db/backfills';
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
      typedSearchAttributes: initialSearchAttributes('rollout', tables, spec.name),
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

export class ReplayError extends Error {}

/**
 * Re-runs the chunks of a finished backfill that cover [from, to), as a new
 * generation of checkpoints (the earlier one is kept for audit), with the
 * spec it last ran with. Late-arriving data and corrected logic use this.
 */
export async function replayBackfill(
  conn: StagefillConnection,
  databaseUrl: string,
  name: string,
  range: { from: string; to: string; table?: string },
): Promise<StartedRun & { table: string }> {
  const pool = createPool({ url: databaseUrl, max: 1, applicationName: 'stagefill-cli' });
  let rows;
  try {
    rows = await findBackfillsByName(pool, name);
  } finally {
    await pool.end();
  }
  const matching = range.table ? rows.filter((r) => r.table_name === qualifiedName(range.table!)) : rows;
  if (!matching.length) throw new ReplayError(`no backfill named "${name}"${range.table ? ` on ${qualifiedName(range.table)}` : ''}; \`stagefill list --kind backfill\` shows what ran`);
  if (matching.length > 1) throw new ReplayError(`backfills named "${name}" exist on ${matching.map((r) => r.table_name).join(', ')}; pick one with --table`);
  const row = matching[0];
  if (row.state !== 'completed') throw new ReplayError(`backfill "${name}" on ${row.table_name} is ${row.state}; replay re-runs chunks of a completed backfill (resume or restart it instead)`);
  const spec = parseBackfillSpec(row.spec);
  const run = await startBackfill(conn, spec, { replay: { from: range.from, to: range.to } });
  return { ...run, table: row.table_name };
}
