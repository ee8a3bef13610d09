import crypto from 'node:crypto';
import { Queryable } from './pool';
import { own, qualified, ident, parseTable, SCHEMA } from './identifiers';
import { recordEvent, listEvents } from './backfills';

/**
 * Every statement a rollout runs: stagefill's own rollout tables, and the DDL
 * of each step kind on the user's tables. Identifiers go through `ident` /
 * `qualified`; values are bound. The user's own SQL (up/down expressions,
 * check expressions, sql steps, gate queries) is spliced as written: running
 * it is what the spec asks for.
 */

// ---- stagefill's rollout tables -------------------------------------------

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

/** DDL waits at most `lockTimeoutMs` for its lock instead of queueing live traffic behind it. */
export async function setDdlTimeouts(db: Queryable, lockTimeoutMs: number): Promise<void> {
  // SET cannot take bind parameters; set_config(..., is_local => true) can.
  await db.query(`SELECT set_config('lock_timeout', $1, true)`, [`${lockTimeoutMs}ms`]);
}

export async function findRunningRollout(db: Queryable, workflowId: string): Promise<RolloutRow | undefined> {
  const { rows } = await db.query<RolloutRow>(`SELECT * FROM ${own('rollouts')} WHERE workflow_id = $1 AND finished_at IS NULL`, [workflowId]);
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
  const { rows } = await db.query<TableLock>(`SELECT * FROM ${own('table_locks')} WHERE table_name = ANY($1::text[]) ORDER BY table_name`, [sorted]);
  return rows;
}

export async function releaseTables(db: Queryable, workflowId: string): Promise<string[]> {
  const { rows } = await db.query<{ table_name: string }>(`DELETE FROM ${own('table_locks')} WHERE workflow_id = $1 RETURNING table_name`, [workflowId]);
  return rows.map((r) => r.table_name);
}

export async function insertRollout(
  db: Queryable,
  r: { workflowId: string; name: string; spec: unknown; tables: string[]; lineage: unknown; plan: unknown; baselines: Record<string, string | null>; actor?: string },
): Promise<RolloutRow> {
  const { rows } = await db.query<RolloutRow>(
    `INSERT INTO ${own('rollouts')} (workflow_id, name, spec, tables, lineage, plan, baselines, actor)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
    [r.workflowId, r.name, JSON.stringify(r.spec), r.tables, JSON.stringify(r.lineage), JSON.stringify(r.plan), JSON.stringify(r.baselines), r.actor ?? null],
  );
  return rows[0];
}

export async function insertSteps(db: Queryable, rolloutId: number, steps: { id: string; kind: string; table: string; transformHash?: string }[]): Promise<void> {
  await db.query(
    `INSERT INTO ${own('rollout_steps')} (rollout_id, step_id, kind, table_name, transform_hash)
     SELECT $1, s.id, s.kind, s.tbl, s.hash FROM jsonb_to_recordset($2::jsonb) AS s(id text, kind text, tbl text, hash text)
     ON CONFLICT DO NOTHING`,
    [rolloutId, JSON.stringify(steps.map((s) => ({ id: s.id, kind: s.kind, tbl: s.table, hash: s.transformHash ?? null })))],
  );
}

/** The step's row, created if the start did not plan it, and locked for this transaction: applies and reverts of one step serialize here. */
export async function lockStep(db: Queryable, s: { rolloutId: number; stepId: string; kind: string; table: string; transformHash?: string }): Promise<StepRow> {
  await insertSteps(db, s.rolloutId, [{ id: s.stepId, kind: s.kind, table: s.table, transformHash: s.transformHash }]);
  const { rows } = await db.query<StepRow>(`SELECT * FROM ${own('rollout_steps')} WHERE rollout_id = $1 AND step_id = $2 FOR UPDATE`, [s.rolloutId, s.stepId]);
  return rows[0];
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

export async function saveCatalogSnapshot(db: Queryable, rolloutId: number, table: string, phase: 'before' | 'after', snapshot: unknown): Promise<void> {
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
  if (!rows.length) throw new Error(`rollout ${rolloutId} does not exist in ${SCHEMA}.rollouts`);
  return rows[0];
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

export async function recordRolloutEvent(
  db: Queryable,
  e: { workflowId: string; event: string; subject?: string | null; detail?: unknown; actor?: string | null },
): Promise<void> {
  await recordEvent(db, { ...e, kind: 'rollout' });
}

/** Runs an operator's check query read-only and returns the first column of the first row as Postgres prints it. */
export async function readOnlyScalar(db: Queryable, text: string, statementTimeoutMs: number): Promise<string | null> {
  await db.query('SET TRANSACTION READ ONLY');
  await db.query(`SELECT set_config('statement_timeout', $1, true)`, [`${statementTimeoutMs}ms`]);
  // Text as Postgres prints it (no JS number or Date conversion), by position (column names may repeat).
  const r = await db.query<unknown[]>({ text, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
  const first = r.rows[0]?.[0];
  return first === undefined || first === null ? null : String(first);
}

export async function recordGateResult(
  db: Queryable,
  g: { rolloutId: number; stepId: string; attempt: number; name: string; ok: boolean; value: string | null; expected: string; deviation: number | null; error?: string },
): Promise<void> {
  await db.query(
    `INSERT INTO ${own('gate_results')} (rollout_id, step_id, attempt, check_name, ok, value, expected, deviation, error)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (rollout_id, step_id, attempt, check_name)
     DO UPDATE SET ok = EXCLUDED.ok, value = EXCLUDED.value, expected = EXCLUDED.expected, deviation = EXCLUDED.deviation, error = EXCLUDED.error, at = clock_timestamp()`,
    [g.rolloutId, g.stepId, g.attempt, g.name, g.ok, g.value, g.expected, g.deviation, g.error ?? null],
  );
}

export interface GateResultRow {
  step_id: string;
  attempt: number;
  check_name: string;
  ok: boolean;
  value: string | null;
  expected: string;
  deviation: number | null;
  error: string | null;
  at: Date;
}

export interface RolloutAudit {
  rollout: RolloutRow;
  steps: StepRow[];
  gateResults: GateResultRow[];
  events: Awaited<ReturnType<typeof listEvents>>;
}

/** Everything recorded about the latest rollout of a workflow id, for `stagefill history`; undefined when none. */
export async function rolloutAudit(db: Queryable, workflowId: string): Promise<RolloutAudit | undefined> {
  const { rows } = await db.query<RolloutRow>(`SELECT * FROM ${own('rollouts')} WHERE workflow_id = $1 ORDER BY id DESC LIMIT 1`, [workflowId]);
  const rollout = rows[0];
  if (!rollout) return undefined;
  const { rows: steps } = await db.query<StepRow>(
    `SELECT * FROM ${own('rollout_steps')} WHERE rollout_id = $1 ORDER BY started_at NULLS LAST, step_id`,
    [rollout.id],
  );
  const { rows: gateResults } = await db.query<GateResultRow>(
    `SELECT step_id, attempt, check_name, ok, value, expected, deviation, error, at FROM ${own('gate_results')} WHERE rollout_id = $1 ORDER BY at, step_id, check_name`,
    [rollout.id],
  );
  const events = (await listEvents(db, workflowId)).filter((e) => e.at >= rollout.started_at);
  return { rollout, steps, gateResults, events };
}

// ---- the objects a rollout creates ----------------------------------------

/**
 * Name of the trigger (on the table) and its function (in the stagefill
 * schema) for one step. Postgres fires BEFORE triggers in name order, so
 * `rank` puts two-way syncs (1) before computed columns (2) — an `up` may read
 * a column another step keeps in sync — and `index` keeps the spec's order.
 */
export function stepTriggerName(rolloutId: number, table: string, stepId: string, rank: 1 | 2, index: number): string {
  const h = crypto.createHash('sha256').update(`${rolloutId}\0${table}\0${stepId}`).digest('hex').slice(0, 8);
  const slug = stepId.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 30);
  return `stagefill_${rank}${String(index).padStart(3, '0')}_${slug}_${h}`;
}

/** The helper CHECK (col IS NOT NULL) a setNotNull validates before SET NOT NULL. */
export function notNullCheckName(table: string, column: string): string {
  const h = crypto.createHash('sha256').update(`${table}\0${column}`).digest('hex').slice(0, 8);
  return `${column.slice(0, 40)}_stagefill_nn_${h}`;
}

export interface ColumnInfo {
  name: string;
  type: string;
  notNull: boolean;
}

export async function tableColumns(db: Queryable, table: string): Promise<ColumnInfo[]> {
  const t = parseTable(table);
  const { rows } = await db.query<ColumnInfo>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull"
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [t.schema, t.name],
  );
  return rows;
}

/** `expr` evaluated over the row being written: bare column names resolve against NEW's columns. */
function overRow(expr: string): string {
  return `(SELECT (${expr}) FROM (SELECT (NEW).*) AS _r)`;
}

/** A dollar-quoted body whose tag cannot occur inside it. */
function dollarQuote(body: string): string {
  let tag = `sf_${crypto.createHash('sha256').update(body).digest('hex').slice(0, 8)}`;
  while (body.includes(`$${tag}$`)) tag += 'x';
  return `$${tag}$${body}$${tag}$`;
}

async function createRowTrigger(db: Queryable, table: string, name: string, body: string): Promise<void> {
  const fn = `${ident(SCHEMA)}.${ident(name)}`;
  await db.query(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS ${dollarQuote(body)}`);
  await db.query(`CREATE TRIGGER ${ident(name)} BEFORE INSERT OR UPDATE ON ${qualified(table)} FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
}

/** addColumn: the column, and a trigger that sets it from `up` on every insert and update (dual write). */
export async function addComputedColumn(db: Queryable, c: { table: string; column: string; type: string; default?: string; up: string; trigger: string }): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(c.table)} ADD COLUMN ${ident(c.column)} ${c.type}${c.default !== undefined ? ` DEFAULT ${c.default}` : ''}`);
  await createRowTrigger(db, c.table, c.trigger, `
BEGIN
  NEW.${ident(c.column)} := ${overRow(c.up)};
  RETURN NEW;
END`);
}

/**
 * alterColumn: a new column kept equal to `up` of the old one and the old to
 * `down` of the new, whichever side a writer changed. An update that sets
 * the new column to what `up` already gives (the backfill does exactly that)
 * leaves the old column alone, so a lossy `down` never rewrites legacy data.
 */
export async function addSyncedColumn(
  db: Queryable,
  c: { table: string; column: string; newColumn: string; type: string; up: string; down: string; trigger: string },
): Promise<void> {
  const oldCol = ident(c.column);
  const newCol = ident(c.newColumn);
  await db.query(`ALTER TABLE ${qualified(c.table)} ADD COLUMN ${newCol} ${c.type}`);
  await createRowTrigger(db, c.table, c.trigger, `
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.${newCol} IS NULL THEN
      NEW.${newCol} := ${overRow(c.up)};
    ELSIF NEW.${oldCol} IS NULL THEN
      NEW.${oldCol} := ${overRow(c.down)};
    END IF;
  ELSIF NEW.${oldCol} IS DISTINCT FROM OLD.${oldCol} THEN
    NEW.${newCol} := ${overRow(c.up)};
  ELSIF NEW.${newCol} IS DISTINCT FROM OLD.${newCol} AND NEW.${newCol} IS DISTINCT FROM ${overRow(c.up)} THEN
    NEW.${oldCol} := ${overRow(c.down)};
  END IF;
  RETURN NEW;
END`);
}

/**
 * Plans `expr` over the table's rows without reading one: an unknown column
 * or a type mismatch fails here, not later in the trigger of every write.
 */
export async function checkRowExpression(db: Queryable, table: string, expr: string, type: string): Promise<void> {
  await db.query(`SELECT (${expr})::${type} FROM ${qualified(table)} LIMIT 0`);
}

export async function dropStepTrigger(db: Queryable, table: string, name: string): Promise<void> {
  await db.query(`DROP TRIGGER IF EXISTS ${ident(name)} ON ${qualified(table)}`);
  await db.query(`DROP FUNCTION IF EXISTS ${ident(SCHEMA)}.${ident(name)}()`);
}

export async function dropColumn(db: Queryable, table: string, column: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} DROP COLUMN IF EXISTS ${ident(column)}`);
}

export async function renameColumn(db: Queryable, table: string, from: string, to: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} RENAME COLUMN ${ident(from)} TO ${ident(to)}`);
}

/** NOT VALID: only new writes are checked, so the ALTER holds its lock for an instant, not a scan. */
export async function addCheckNotValid(db: Queryable, table: string, name: string, expression: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} ADD CONSTRAINT ${ident(name)} CHECK (${expression}) NOT VALID`);
}

/** The scan runs under SHARE UPDATE EXCLUSIVE: reads and writes carry on meanwhile. */
export async function validateConstraint(db: Queryable, table: string, name: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} VALIDATE CONSTRAINT ${ident(name)}`);
}

export async function dropConstraint(db: Queryable, table: string, name: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} DROP CONSTRAINT IF EXISTS ${ident(name)}`);
}

export async function constraintExists(db: Queryable, table: string, name: string): Promise<boolean> {
  const t = parseTable(table);
  const { rows } = await db.query(
    `SELECT 1 FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND k.conname = $3`,
    [t.schema, t.name, name],
  );
  return rows.length > 0;
}

/** With a valid CHECK (col IS NOT NULL) in place Postgres skips the full-table scan (PG 12+). */
export async function setColumnNotNull(db: Queryable, table: string, column: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} ALTER COLUMN ${ident(column)} SET NOT NULL`);
}

export async function dropColumnNotNull(db: Queryable, table: string, column: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} ALTER COLUMN ${ident(column)} DROP NOT NULL`);
}

/** A sql step's apply or revert, as written (may hold several statements). */
export async function runUserStatements(db: Queryable, text: string): Promise<void> {
  await db.query(text);
}

export async function transactionTime(db: Queryable): Promise<Date> {
  const { rows } = await db.query<{ now: Date }>('SELECT now() AS now');
  return rows[0].now;
}

export async function schemaExists(db: Queryable, schema: string): Promise<boolean> {
  const { rows } = await db.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema]);
  return rows.length > 0;
}

/** One version's read path: schema `schema` with a view named like the table, selecting `columns` (source AS name). */
export async function createVersionView(db: Queryable, v: { schema: string; table: string; columns: { source: string; as: string }[] }): Promise<void> {
  const list = v.columns.map((c) => (c.source === c.as ? ident(c.source) : `${ident(c.source)} AS ${ident(c.as)}`)).join(', ');
  await db.query(`CREATE SCHEMA ${ident(v.schema)}`);
  await db.query(`CREATE VIEW ${ident(v.schema)}.${ident(parseTable(v.table).name)} AS SELECT ${list} FROM ${qualified(v.table)}`);
}

/** Drops a version's view and then its schema; RESTRICT, so anything else someone put there stops the drop rather than vanishing with it. */
export async function dropVersionView(db: Queryable, schema: string, table: string): Promise<void> {
  await db.query(`DROP VIEW IF EXISTS ${ident(schema)}.${ident(parseTable(table).name)}`);
  await db.query(`DROP SCHEMA IF EXISTS ${ident(schema)}`);
}

export interface ReadPathRow {
  table_name: string;
  version: number;
  percent: number;
  previous_version: number | null;
  workflow_id: string | null;
}

export async function lockReadPath(db: Queryable, table: string): Promise<ReadPathRow | undefined> {
  const { rows } = await db.query<ReadPathRow>(
    `SELECT table_name, version, percent, previous_version, workflow_id FROM ${own('read_paths')} WHERE table_name = $1 FOR UPDATE`,
    [table],
  );
  return rows[0];
}

export async function getReadPath(db: Queryable, table: string): Promise<ReadPathRow | undefined> {
  const { rows } = await db.query<ReadPathRow>(`SELECT table_name, version, percent, previous_version, workflow_id FROM ${own('read_paths')} WHERE table_name = $1`, [table]);
  return rows[0];
}

export async function setReadPath(db: Queryable, r: ReadPathRow): Promise<void> {
  await db.query(
    `INSERT INTO ${own('read_paths')} (table_name, version, percent, previous_version, workflow_id) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (table_name) DO UPDATE
       SET version = EXCLUDED.version, percent = EXCLUDED.percent, previous_version = EXCLUDED.previous_version,
           workflow_id = EXCLUDED.workflow_id, updated_at = now()`,
    [r.table_name, r.version, r.percent, r.previous_version, r.workflow_id],
  );
}

export async function deleteReadPath(db: Queryable, table: string): Promise<void> {
  await db.query(`DELETE FROM ${own('read_paths')} WHERE table_name = $1`, [table]);
}

/** The transform of the backfill that fills a column a step added: `up` over each row of a key range. */
export function stepBackfillTransform(table: string, column: string, up: string, key: string): string {
  return `UPDATE ${qualified(table)} SET ${ident(column)} = (${up}) WHERE ${ident(key)} >= :lo AND ${ident(key)} < :hi`;
}
