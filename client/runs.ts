import type { Spec, RolloutSpec } from '../steps/spec';
import { rolloutWorkflowId } from '../core/common/ids';
import { qualifiedName } from '../core/common/table-name';
import { rolloutSummary, rolloutTables } from '../steps/summary';
import { initialSearchAttributes } from '../workflows/search-attributes';
import type { StagefillConnection } from './connection';
import { parseBackfillSpec } from '../steps/spec';
import { createPool } from '../db/pool';
import { findBackfillsByName } from '../db/backfill/backfills';
import type { StartBackfillOptions } from './operations';
import { startBackfill, defaultActor } from './operations';
import type { StartedRun } from './start';
import { startWorkflow } from './start';
import { ReplayError } from './errors';
import type { RolloutWorkflowInput } from '../workflows/rollout/run';

export interface StartRolloutOptions {
  workflowId?: string;
  actor?: string;
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
  return startWorkflow(conn, {
    workflowType: 'rolloutWorkflow',
    workflowId,
    input,
    memo: { summary: rolloutSummary(spec), startedBy: actor },
    searchAttributes: initialSearchAttributes('rollout', rolloutTables(spec), spec.name),
    alreadyRunning: `rollout "${spec.name}" is already running as ${workflowId}; watch it, roll it back, or wait for it`,
  });
}

/** Starts whatever kind of run the spec describes. */
export async function startRun(
  conn: StagefillConnection,
  spec: Spec,
  opts: StartBackfillOptions & StartRolloutOptions = {},
): Promise<StartedRun> {
  switch (spec.kind) {
    case 'backfill':
      return startBackfill(conn, spec, opts);
    case 'rollout':
      return startRollout(conn, spec, opts);
  }
}

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
  const row = matching[0];
  if (!row)
    throw new ReplayError(
      `no backfill named "${name}"${range.table ? ` on ${qualifiedName(range.table)}` : ''}; \`stagefill list --kind backfill\` shows what ran`,
    );
  if (matching.length > 1)
    throw new ReplayError(`backfills named "${name}" exist on ${matching.map((r) => r.table_name).join(', ')}; pick one with --table`);
  if (row.state !== 'completed')
    throw new ReplayError(
      `backfill "${name}" on ${row.table_name} is ${row.state}; replay re-runs chunks of a completed backfill (resume or restart it instead)`,
    );
  const spec = parseBackfillSpec(row.spec);
  const run = await startBackfill(conn, spec, { replay: { from: range.from, to: range.to } });
  return { ...run, table: row.table_name };
}
