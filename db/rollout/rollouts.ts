import type { Queryable } from '../pool';
import { own, SCHEMA } from '../identifiers';
import { oneRow } from '../rows';

/**
 * stagefill's own rollout tables: rollouts, their steps (with each step's
 * effect and finished phase, and the locks that serialize a step), catalog
 * snapshots and table claims. What a rollout leaves on record (audit events,
 * gate results, `stagefill history`) is in db/rollout/audit.ts, read-path
 * flags in db/rollout/read-paths.ts. DDL on the user's tables lives in db/rollout/ddl.ts,
 * db/rollout/triggers.ts, db/rollout/views.ts and each step kind's steps/<kind>/sql.ts.
 * Values are bound; identifiers go through `own`.
 */

export interface RolloutRow {
  id: number;
  workflow_id: string;
  name: string;
  spec: unknown;
  tables: string[];
  lineage: Record<string, Record<string, string>>;
  plan: unknown;
  baselines: Record<string, string | null>;
  state: string;
  reason: string | null;
  actor: string | null;
  catalog_check: { table: string; equal: boolean; diff: string[] }[] | null;
  started_at: Date;
  finished_at: Date | null;
  updated_at: Date;
}

export interface StepRow {
  rollout_id: number;
  step_id: string;
  kind: string;
  table_name: string;
  state: string;
  /** What the database holds: none | applied | reverted (setNotNull/addCheck also record `phase`). */
  effect: 'none' | 'applied' | 'reverted';
  phase: string | null;
  detail: Record<string, unknown>;
  state_detail: unknown;
  transform_hash: string | null;
  actor: string | null;
  started_at: Date | null;
  finished_at: Date | null;
  applied_at: Date | null;
  reverted_at: Date | null;
  updated_at: Date;
}

export async function findRunningRollout(db: Queryable, workflowId: string): Promise<RolloutRow | undefined> {
  const { rows } = await db.query<RolloutRow>(`SELECT * FROM ${own('rollouts')} WHERE workflow_id = $1 AND finished_at IS NULL`, [
    workflowId,
  ]);
  return rows[0];
}

/** Serializes starts of one workflow id, so a retried start cannot race its first attempt into two rows. */
export async function lockRolloutStart(db: Queryable, workflowId: string): Promise<void> {
  await db.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`stagefill.rollout:${workflowId}`]);
}

export interface TableLock {
  table_name: string;
  workflow_id: string;
  rollout_name: string;
  taken_at: Date;
}

/**
 * Claims every free table for this workflow and returns who holds each one
 * afterwards. Tables are claimed in sorted order, so two starts over
 * overlapping tables cannot deadlock; a concurrent claim of the same table
 * waits for the other transaction and then sees its row.
 */
export async function claimTables(db: Queryable, tables: string[], workflowId: string, rolloutName: string): Promise<TableLock[]> {
  const sorted = [...new Set(tables)].sort();
  await db.query(
    `INSERT INTO ${own('table_locks')} (table_name, workflow_id, rollout_name)
     SELECT t, $2, $3 FROM unnest($1::text[]) WITH ORDINALITY AS u(t, o) ORDER BY o
     ON CONFLICT (table_name) DO NOTHING`,
    [sorted, workflowId, rolloutName],
  );
  const { rows } = await db.query<TableLock>(`SELECT * FROM ${own('table_locks')} WHERE table_name = ANY($1::text[]) ORDER BY table_name`, [
    sorted,
  ]);
  return rows;
}

export async function releaseTables(db: Queryable, workflowId: string): Promise<string[]> {
  const { rows } = await db.query<{ table_name: string }>(`DELETE FROM ${own('table_locks')} WHERE workflow_id = $1 RETURNING table_name`, [
    workflowId,
  ]);
  return rows.map((r) => r.table_name);
}

export async function insertRollout(
  db: Queryable,
  r: {
    workflowId: string;
    name: string;
    spec: unknown;
    tables: string[];
    lineage: unknown;
    plan: unknown;
    baselines: Record<string, string | null>;
    actor?: string;
  },
): Promise<RolloutRow> {
  const { rows } = await db.query<RolloutRow>(
    `INSERT INTO ${own('rollouts')} (workflow_id, name, spec, tables, lineage, plan, baselines, actor)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
    [
      r.workflowId,
      r.name,
      JSON.stringify(r.spec),
      r.tables,
      JSON.stringify(r.lineage),
      JSON.stringify(r.plan),
      JSON.stringify(r.baselines),
      r.actor ?? null,
    ],
  );
  return oneRow({ rows }, `the new rollout ${r.name}`);
}

export async function insertSteps(
  db: Queryable,
  rolloutId: number,
  steps: { id: string; kind: string; table: string; transformHash?: string }[],
): Promise<void> {
  await db.query(
    `INSERT INTO ${own('rollout_steps')} (rollout_id, step_id, kind, table_name, transform_hash)
     SELECT $1, s.id, s.kind, s.tbl, s.hash FROM jsonb_to_recordset($2::jsonb) AS s(id text, kind text, tbl text, hash text)
     ON CONFLICT DO NOTHING`,
    [rolloutId, JSON.stringify(steps.map((s) => ({ id: s.id, kind: s.kind, tbl: s.table, hash: s.transformHash ?? null })))],
  );
}

/** The step's row, created if the start did not plan it, and locked for this transaction: applies and reverts of one step serialize here. */
export async function lockStep(
  db: Queryable,
  s: { rolloutId: number; stepId: string; kind: string; table: string; transformHash?: string },
): Promise<StepRow> {
  await insertSteps(db, s.rolloutId, [{ id: s.stepId, kind: s.kind, table: s.table, transformHash: s.transformHash }]);
  const { rows } = await db.query<StepRow>(`SELECT * FROM ${own('rollout_steps')} WHERE rollout_id = $1 AND step_id = $2 FOR UPDATE`, [
    s.rolloutId,
    s.stepId,
  ]);
  return oneRow({ rows }, `step ${s.stepId} of rollout ${s.rolloutId}`); // inserted just above if it was not there
}

/** Written in the DDL's own transaction: the effect is recorded exactly when it happened. */
export async function setStepEffect(
  db: Queryable,
  rolloutId: number,
  stepId: string,
  e: { effect: StepRow['effect']; phase: string | null; detail: Record<string, unknown>; transformHash?: string },
): Promise<void> {
  await db.query(
    `UPDATE ${own('rollout_steps')}
        SET effect = $3, phase = $4, detail = $5, transform_hash = COALESCE($6, transform_hash),
            applied_at = CASE WHEN $3 = 'applied' THEN now() ELSE applied_at END,
            reverted_at = CASE WHEN $3 = 'reverted' THEN now() ELSE reverted_at END,
            updated_at = now()
      WHERE rollout_id = $1 AND step_id = $2`,
    [rolloutId, stepId, e.effect, e.phase, JSON.stringify(e.detail), e.transformHash ?? null],
  );
}

export async function setStepState(
  db: Queryable,
  s: { rolloutId: number; stepId: string; kind: string; table: string; state: string; detail?: unknown; actor?: string },
): Promise<void> {
  await insertSteps(db, s.rolloutId, [{ id: s.stepId, kind: s.kind, table: s.table }]);
  await db.query(
    `UPDATE ${own('rollout_steps')}
        SET state = $3, state_detail = $4, actor = COALESCE($5, actor),
            started_at = CASE WHEN $3 = 'running' THEN COALESCE(started_at, clock_timestamp()) ELSE started_at END,
            finished_at = CASE WHEN $3 IN ('completed', 'failed', 'skipped', 'reverted') THEN clock_timestamp() ELSE finished_at END,
            updated_at = clock_timestamp()
      WHERE rollout_id = $1 AND step_id = $2`,
    [s.rolloutId, s.stepId, s.state, s.detail === undefined ? null : JSON.stringify(s.detail), s.actor ?? null],
  );
}

export async function saveCatalogSnapshot(
  db: Queryable,
  rolloutId: number,
  table: string,
  phase: 'before' | 'after',
  snapshot: unknown,
): Promise<void> {
  await db.query(
    `INSERT INTO ${own('catalog_snapshots')} (rollout_id, table_name, phase, snapshot) VALUES ($1, $2, $3, $4)
     ON CONFLICT (rollout_id, table_name, phase) DO UPDATE SET snapshot = EXCLUDED.snapshot, taken_at = now()`,
    [rolloutId, table, phase, JSON.stringify(snapshot)],
  );
}

export async function loadCatalogSnapshots<T>(db: Queryable, rolloutId: number, phase: 'before' | 'after'): Promise<Map<string, T>> {
  const { rows } = await db.query<{ table_name: string; snapshot: T }>(
    `SELECT table_name, snapshot FROM ${own('catalog_snapshots')} WHERE rollout_id = $1 AND phase = $2`,
    [rolloutId, phase],
  );
  return new Map(rows.map((r) => [r.table_name, r.snapshot]));
}

export async function lockRollout(db: Queryable, rolloutId: number): Promise<RolloutRow> {
  const { rows } = await db.query<RolloutRow>(`SELECT * FROM ${own('rollouts')} WHERE id = $1 FOR UPDATE`, [rolloutId]);
  const row = rows[0];
  if (!row) throw new Error(`rollout ${rolloutId} does not exist in ${SCHEMA}.rollouts`);
  return row;
}

export async function getRollout(db: Queryable, rolloutId: number): Promise<RolloutRow | undefined> {
  const { rows } = await db.query<RolloutRow>(`SELECT * FROM ${own('rollouts')} WHERE id = $1`, [rolloutId]);
  return rows[0];
}

export async function finishRolloutRow(
  db: Queryable,
  f: { rolloutId: number; state: string; reason?: string; actor?: string; catalogCheck: unknown },
): Promise<void> {
  await db.query(
    `UPDATE ${own('rollouts')}
        SET state = $2, reason = $3, actor = COALESCE($4, actor), catalog_check = $5, finished_at = now(), updated_at = now()
      WHERE id = $1`,
    [f.rolloutId, f.state, f.reason ?? null, f.actor ?? null, JSON.stringify(f.catalogCheck)],
  );
}

/** The step's row as it stands, without a lock (a plain connection outside a transaction reads it so). */
export async function getStep(db: Queryable, rolloutId: number, stepId: string): Promise<StepRow | undefined> {
  const { rows } = await db.query<StepRow>(`SELECT * FROM ${own('rollout_steps')} WHERE rollout_id = $1 AND step_id = $2`, [
    rolloutId,
    stepId,
  ]);
  return rows[0];
}

/**
 * Serializes attempts at a step's phase that runs outside a transaction: a
 * session-level advisory lock, held by the plain connection that runs the
 * phase, since no transaction (whose snapshot CREATE INDEX CONCURRENTLY would
 * wait for) may stay open meanwhile. A second attempt polls for the lock
 * rather than waiting in pg_advisory_lock: a statement waiting there holds a
 * snapshot, the holder's CREATE INDEX CONCURRENTLY waits for that snapshot,
 * and PostgreSQL breaks the cycle by failing one of them ("deadlock
 * detected"). Gives up after `maxWaitMs` (the step's lock timeout) with
 * PostgreSQL's own lock-timeout error, which the runner retries.
 */
export async function lockStepSession(db: Queryable, rolloutId: number, stepId: string, maxWaitMs: number, pollMs = 100): Promise<void> {
  const key = `stagefill.step:${rolloutId}:${stepId}`;
  const started = Date.now();
  for (;;) {
    const { rows } = await db.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [key]);
    if (oneRow({ rows }, 'pg_try_advisory_lock()').ok) return;
    if (Date.now() - started >= maxWaitMs)
      throw Object.assign(new Error(`canceling statement due to lock timeout: another attempt at step ${stepId} holds its phase lock`), {
        code: '55P03',
      });
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

export async function unlockStepSession(db: Queryable, rolloutId: number, stepId: string): Promise<void> {
  await db.query('SELECT pg_advisory_unlock(hashtext($1))', [`stagefill.step:${rolloutId}:${stepId}`]);
}
