import { Context, ApplicationFailure } from '@temporalio/activity';
import type { PoolClient } from 'pg';
import { withTransaction, Queryable } from '../db/pool';
import * as sql from '../db/rollouts';
import { snapshotCatalog, compareCatalogs, CatalogSnapshot } from '../db/catalog';
import { parseTable } from '../db/identifiers';
import { parseBackfillSpec } from '../spec';
import type { RolloutSpec, RolloutStep, GateCheck, BackfillSpec } from '../spec';
import type { StepDescription } from '../plan/describe';
import { viewSchemaName } from '../plan/describe';
import { normalizeGraph } from '../plan/graph';
import { evaluateExpect, describeExpect } from '../plan/expect';
import { ActivityDeps, hashTransform } from './backfill';
import { classifyPgError } from './errors';

// ---- the interface the rollout workflow calls ------------------------------

export interface BeginRolloutInput {
  workflowId: string;
  name: string;
  spec: RolloutSpec;
  /** Qualified schema.table: every table the graph touches. */
  tables: string[];
  plan: StepDescription[];
  actor?: string;
}
export interface BeginRolloutResult {
  rolloutId: number;
  /** `${stepId}/${checkName}` for every check with unchanged: true: its value when the rollout began. */
  baselines: Record<string, string | null>;
  resumed: boolean;
}
export interface StepInput {
  rolloutId: number;
  workflowId: string;
  rolloutName: string;
  stepId: string;
  step: RolloutStep;
  /** Qualified schema.table. */
  table: string;
  allSteps: { id: string; table: string; step: RolloutStep }[];
  actor?: string;
  /** How long DDL waits for its table lock before giving up (and being retried); 3s when absent. */
  lockTimeoutMs?: number;
}
export interface StepApplied {
  alreadyDone: boolean;
  backfill?: BackfillSpec;
  detail?: Record<string, unknown>;
}
export interface CheckResult {
  name: string;
  ok: boolean;
  value: string | null;
  expected: string;
  deviation: number | null;
  error?: string;
}
export type StepState = 'running' | 'completed' | 'failed' | 'held' | 'reverting' | 'reverted' | 'skipped';
export interface RunChecksInput {
  rolloutId: number;
  workflowId: string;
  stepId: string;
  table: string;
  checks: GateCheck[];
  baselines: Record<string, string | null>;
  attempt: number;
}
export interface CatalogComparison {
  table: string;
  equal: boolean;
  diff: string[];
}

/** Failure types the workflow (and operators) can tell apart. */
export const TABLE_BUSY = 'TableBusy';
export const IRREVERSIBLE = 'Irreversible';
export const STEP_SQL_ERROR = 'StepSqlError';
export const STEP_SETUP_ERROR = 'StepSetupError';
export const STEP_VALIDATION_FAILED = 'StepValidationFailed';
export const CHECK_SQL_ERROR = 'CheckSqlError';

const DEFAULT_LOCK_TIMEOUT_MS = 3000;
/** Step kinds that change the schema; the others (backfill, gate, soak, approval) only have their revert recorded. */
const SCHEMA_KINDS = new Set(['addColumn', 'alterColumn', 'setNotNull', 'addCheck', 'sql', 'expose', 'contract']);
const CHECK_STATEMENT_TIMEOUT_MS = 60_000;

/** The schema.table form every stagefill row uses, whether or not the caller wrote the schema. */
function canonicalTable(table: string): string {
  const t = parseTable(table);
  return `${t.schema}.${t.name}`;
}

/** Matches the names `viewSchemaName(table, n)` gives, for any n. */
function viewSchemaPattern(table: string): string {
  const escape = (s: string) => s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
  const v0 = viewSchemaName(table, 0);
  // a name so long that the version was cut off: every version maps to this one schema
  if (!v0.endsWith('_v0')) return `^${escape(v0)}$`;
  return `^${escape(v0.slice(0, -1))}[0-9]+$`;
}

/** The columns each step kind's user SQL lives in: hashed into the rollout's lineage. */
const LINEAGE_FIELDS = ['up', 'down', 'transform', 'apply', 'revert', 'expression', 'default'] as const;

function stepLineage(step: RolloutStep): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of LINEAGE_FIELDS) {
    const v = (step as Record<string, unknown>)[f];
    if (typeof v === 'string') out[f] = hashTransform(v);
  }
  return out;
}

function stepHash(step: RolloutStep): string | undefined {
  const l = stepLineage(step);
  return Object.keys(l).length ? hashTransform(JSON.stringify(l)) : undefined;
}

function failure(type: string, message: string, details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true, details: details === undefined ? undefined : [details] });
}

/** Heartbeats while a long statement runs, when called as an activity (the tests call these functions directly). */
function heartbeating(): () => void {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return () => {};
  }
  const timer = setInterval(() => ctx.heartbeat(), 5000);
  return () => clearInterval(timer);
}

function pgMessage(err: unknown): string {
  const e = err as { message?: string; detail?: string; hint?: string };
  return `${e?.message ?? String(err)}${e?.detail ? ` (${e.detail})` : ''}${e?.hint ? ` hint: ${e.hint}` : ''}`;
}

/**
 * A lock timeout or a lost connection is worth retrying: a plain Error, so
 * Temporal retries with backoff. Anything else the database rejected will be
 * rejected again: non-retryable, naming the step and quoting Postgres.
 */
function stepError(err: unknown, i: StepInput, doing: string): unknown {
  if (err instanceof ApplicationFailure) return err;
  const cls = classifyPgError(err);
  if (cls === 'lock') return new Error(`step "${i.stepId}" (${i.step.kind} on ${i.table}): ${doing} could not get its lock within the lock timeout; live traffic holds ${i.table}, will retry`);
  if (cls === 'transient') return err;
  return failure(STEP_SQL_ERROR, `step "${i.stepId}" (${i.step.kind} on ${i.table}): ${doing} failed: ${pgMessage(err)}`, {
    stepId: i.stepId,
    code: (err as { code?: string })?.code ?? null,
  });
}

// ---- what each step's objects are called ------------------------------------

function stepIndex(i: StepInput, stepId: string): number {
  const n = i.allSteps.findIndex((s) => s.id === stepId);
  return n < 0 ? 999 : n;
}

function triggerOf(i: StepInput, s: { id: string; table: string; step: RolloutStep }): string {
  return sql.stepTriggerName(i.rolloutId, canonicalTable(s.table), s.id, s.step.kind === 'alterColumn' ? 1 : 2, stepIndex(i, s.id));
}

function newColumnOf(step: Extract<RolloutStep, { kind: 'alterColumn' }>): string {
  return step.newName ?? `${step.column}_stagefill_new`;
}

function backfillName(rolloutName: string, stepId: string): string {
  const name = `${rolloutName}.${stepId}`;
  return name.length <= 100 ? name : `${name.slice(0, 90)}.${hashTransform(name).slice(0, 9)}`;
}

/** The backfill that fills a column this step added, as a checked BackfillSpec. */
function stepBackfill(i: StepInput, column: string, step: Extract<RolloutStep, { kind: 'addColumn' | 'alterColumn' }>): BackfillSpec {
  const tuning = step.backfill;
  const key = tuning?.key ?? 'id';
  const table = canonicalTable(i.table);
  try {
    return parseBackfillSpec({
      kind: 'backfill',
      name: backfillName(i.rolloutName, i.stepId),
      table,
      key,
      chunkSize: tuning?.chunkSize ?? 5000,
      parallelism: tuning?.parallelism ?? 2,
      throttle: tuning?.throttle,
      lockTimeoutMs: tuning?.lockTimeoutMs,
      statementTimeoutMs: tuning?.statementTimeoutMs,
      transform: sql.stepBackfillTransform(table, column, step.up, key),
    });
  } catch (err) {
    throw failure(STEP_SETUP_ERROR, `step "${i.stepId}" (${step.kind} on ${i.table}): its backfill is not valid: ${(err as Error).message}`);
  }
}

type Effect = { detail: Record<string, unknown>; backfill?: BackfillSpec };

async function checkExpression(db: Queryable, i: StepInput, table: string, field: 'up' | 'down', expr: string, type: string): Promise<void> {
  try {
    await sql.checkRowExpression(db, table, expr, type);
  } catch (err) {
    if (classifyPgError(err) !== 'fatal') throw err;
    throw failure(STEP_SQL_ERROR, `step "${i.stepId}" (${i.step.kind} on ${table}): ${field}: (${expr}) is not an expression over the rows of ${table} giving ${type}: ${pgMessage(err)}; fix the step's ${field}`, {
      stepId: i.stepId,
      code: (err as { code?: string })?.code ?? null,
    });
  }
}

export function createRolloutActivities({ pool, logger, metrics }: ActivityDeps) {
  async function beginRollout(i: BeginRolloutInput): Promise<BeginRolloutResult> {
    const tables = [...new Set(i.tables.map(canonicalTable))].sort();
    const existing = await sql.findRunningRollout(pool, i.workflowId);
    if (existing) return { rolloutId: Number(existing.id), baselines: existing.baselines, resumed: true };

    const graph = normalizeGraph(i.spec.steps, canonicalTable(i.spec.table));
    // Baselines come first, in their own read-only transaction: nothing is taken if a query is broken.
    const baselines: Record<string, string | null> = {};
    for (const [n, step] of i.spec.steps.entries()) {
      if (step.kind !== 'gate' && step.kind !== 'soak') continue;
      for (const check of step.checks) {
        if (!check.unchanged) continue;
        const key = `${graph[n].id}/${check.name}`;
        try {
          baselines[key] = await withTransaction(pool, (db) => sql.readOnlyScalar(db, check.sql, CHECK_STATEMENT_TIMEOUT_MS));
        } catch (err) {
          if (classifyPgError(err) === 'transient') throw err;
          throw failure(CHECK_SQL_ERROR, `step "${graph[n].id}" check "${check.name}": its baseline query failed at the rollout start: ${pgMessage(err)}; fix checks[].sql`);
        }
      }
    }
    const lineage = Object.fromEntries(graph.map((g, n) => [g.id, stepLineage(i.spec.steps[n])]));

    return withTransaction(pool, async (db) => {
      await sql.lockRolloutStart(db, i.workflowId);
      const again = await sql.findRunningRollout(db, i.workflowId);
      if (again) return { rolloutId: Number(again.id), baselines: again.baselines, resumed: true };

      const holders = await sql.claimTables(db, tables, i.workflowId, i.name);
      const busy = holders.find((h) => h.workflow_id !== i.workflowId);
      if (busy) {
        throw failure(
          TABLE_BUSY,
          `table ${busy.table_name} has a rollout running: ${busy.rollout_name} (${busy.workflow_id}); wait for it to finish or roll it back`,
          { table: busy.table_name, workflowId: busy.workflow_id, rolloutName: busy.rollout_name },
        );
      }
      const row = await sql.insertRollout(db, { workflowId: i.workflowId, name: i.name, spec: i.spec, tables, lineage, plan: i.plan, baselines, actor: i.actor });
      const rolloutId = Number(row.id);
      await sql.insertSteps(
        db,
        rolloutId,
        graph.map((g, n) => ({ id: g.id, kind: g.kind, table: canonicalTable(g.table), transformHash: stepHash(i.spec.steps[n]) })),
      );
      for (const t of tables) await sql.saveCatalogSnapshot(db, rolloutId, t, 'before', await snapshotCatalog(db, t, viewSchemaPattern(t)));
      await sql.recordRolloutEvent(db, { workflowId: i.workflowId, event: 'started', detail: { rolloutId, tables, lineage, plan: i.plan, baselines }, actor: i.actor });
      logger.info({ rollout: i.name, workflowId: i.workflowId, rolloutId, tables }, `rollout ${i.name} started on ${tables.join(', ')}`);
      return { rolloutId, baselines, resumed: false };
    });
  }

  /** One transaction that locks the step's row (so a retry or a racing attempt waits, then sees what happened) and then runs `fn`. */
  async function inStepTransaction<T>(i: StepInput, doing: string, fn: (db: PoolClient, row: sql.StepRow) => Promise<T>): Promise<T> {
    const stop = heartbeating();
    try {
      return await withTransaction(pool, async (db) => {
        await sql.setDdlTimeouts(db, i.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
        const row = await sql.lockStep(db, { rolloutId: i.rolloutId, stepId: i.stepId, kind: i.step.kind, table: canonicalTable(i.table), transformHash: stepHash(i.step) });
        return fn(db, row);
      });
    } catch (err) {
      throw stepError(err, i, doing);
    } finally {
      stop();
    }
  }

  async function applyStep(i: StepInput): Promise<StepApplied> {
    const hash = stepHash(i.step);
    const log = (detail: Record<string, unknown>) =>
      logger.info({ rollout: i.rolloutName, step: i.stepId, kind: i.step.kind, table: i.table, transformHash: hash, ...detail }, `step ${i.stepId} (${i.step.kind} on ${i.table}) applied`);

    if (i.step.kind === 'setNotNull' || i.step.kind === 'addCheck') return applyConstraintStep(i, i.step, log);

    return inStepTransaction(i, 'apply', async (db, row) => {
      if (row.effect === 'applied') return { alreadyDone: true, detail: row.detail, backfill: backfillOf(i) };
      if (row.effect === 'reverted') throw failure(STEP_SETUP_ERROR, `step "${i.stepId}" was already reverted in rollout ${i.rolloutId}; a reverted step is not applied again`);
      const effect = await applyEffect(db, i);
      await sql.setStepEffect(db, i.rolloutId, i.stepId, { effect: 'applied', phase: null, detail: effect.detail, transformHash: hash });
      await recordApplied(db, i, effect.detail, hash);
      log(effect.detail);
      return { alreadyDone: false, detail: effect.detail, backfill: effect.backfill };
    });
  }

  /** The backfill an already-applied step hands back again, so a retried apply still starts it. */
  function backfillOf(i: StepInput): BackfillSpec | undefined {
    if (i.step.kind === 'addColumn') return stepBackfill(i, i.step.column, i.step);
    if (i.step.kind === 'alterColumn') return stepBackfill(i, newColumnOf(i.step), i.step);
    return undefined;
  }

  async function applyEffect(db: PoolClient, i: StepInput): Promise<Effect> {
    const step = i.step;
    const table = canonicalTable(i.table);
    switch (step.kind) {
      case 'addColumn': {
        // built before the DDL: an invalid backfill must not leave a half-done step behind
        const backfill = stepBackfill(i, step.column, step);
        const trigger = triggerOf(i, { id: i.stepId, table, step });
        await checkExpression(db, i, table, 'up', step.up, step.type);
        await sql.addComputedColumn(db, { table, column: step.column, type: step.type, default: step.default, up: step.up, trigger });
        return { detail: { column: step.column, trigger, function: trigger }, backfill };
      }
      case 'alterColumn': {
        const newColumn = newColumnOf(step);
        const backfill = stepBackfill(i, newColumn, step);
        const current = (await sql.tableColumns(db, table)).find((c) => c.name === step.column);
        if (!current) throw failure(STEP_SETUP_ERROR, `step "${i.stepId}": column: ${table} has no column "${step.column}"; fix the step's column`);
        const type = step.newType ?? current.type;
        const trigger = triggerOf(i, { id: i.stepId, table, step });
        await checkExpression(db, i, table, 'up', step.up, type);
        await sql.addSyncedColumn(db, { table, column: step.column, newColumn, type, up: step.up, down: step.down, trigger });
        // `down` reads the new column, so it can only be checked once that exists
        await checkExpression(db, i, table, 'down', step.down, current.type);
        return { detail: { column: step.column, newColumn, type, trigger, function: trigger }, backfill };
      }
      case 'sql':
        await sql.runUserStatements(db, step.apply);
        return { detail: {} };
      case 'expose':
        return { detail: await expose(db, i, step) };
      case 'contract':
        return { detail: await contract(db, i) };
      case 'backfill':
      case 'gate':
      case 'soak':
      case 'approval':
        // nothing in the schema: the workflow runs these; recording them keeps apply/revert uniform
        return { detail: {} };
      case 'setNotNull':
      case 'addCheck':
        throw new Error('constraint steps are applied in phases by applyConstraintStep');
    }
  }

  /**
   * setNotNull / addCheck without one long lock, each phase its own
   * transaction recorded with its DDL: ADD ... NOT VALID (an instant), then
   * VALIDATE (a scan that lets writes through), then for setNotNull SET NOT
   * NULL, which the valid check makes a catalog-only change.
   */
  async function applyConstraintStep(
    i: StepInput,
    step: Extract<RolloutStep, { kind: 'setNotNull' | 'addCheck' }>,
    log: (d: Record<string, unknown>) => void,
  ): Promise<StepApplied> {
    const table = canonicalTable(i.table);
    const constraint = step.kind === 'addCheck' ? step.name : sql.notNullCheckName(table, step.column);
    const expression = step.kind === 'addCheck' ? step.expression : `${step.column} IS NOT NULL`;
    const hash = stepHash(step);

    const first = await inStepTransaction(i, 'ADD CONSTRAINT ... NOT VALID', async (db, row): Promise<StepApplied | sql.StepRow> => {
      if (row.effect === 'applied') return { alreadyDone: true, detail: row.detail };
      if (row.effect === 'reverted') throw failure(STEP_SETUP_ERROR, `step "${i.stepId}" was already reverted in rollout ${i.rolloutId}; a reverted step is not applied again`);
      if (row.phase !== null) return row;
      let wasNotNull = false;
      if (step.kind === 'setNotNull') {
        const col = (await sql.tableColumns(db, table)).find((c) => c.name === step.column);
        if (!col) throw failure(STEP_SETUP_ERROR, `step "${i.stepId}": column: ${table} has no column "${step.column}"; fix the step's column`);
        wasNotNull = col.notNull;
      }
      const detail = { constraint, wasNotNull };
      // a column that is NOT NULL already needs nothing, and its revert must leave it so
      if (!wasNotNull) await sql.addCheckNotValid(db, table, constraint, expression);
      await sql.setStepEffect(db, i.rolloutId, i.stepId, { effect: 'none', phase: 'not_valid', detail, transformHash: hash });
      return { ...row, phase: 'not_valid', detail };
    });
    if ('alreadyDone' in first) return first;
    const detail = first.detail as { constraint: string; wasNotNull: boolean };

    if (first.phase === 'not_valid') {
      try {
        await inStepTransaction(i, 'VALIDATE CONSTRAINT', async (db, row) => {
          if (row.phase !== 'not_valid') return;
          if (!detail.wasNotNull) await sql.validateConstraint(db, table, constraint);
          // a validated check is the whole of addCheck; setNotNull has one phase to go
          await sql.setStepEffect(db, i.rolloutId, i.stepId, { effect: step.kind === 'addCheck' ? 'applied' : 'none', phase: 'validated', detail });
          if (step.kind === 'addCheck') await recordApplied(db, i, detail, hash);
        });
      } catch (err) {
        const failed = err instanceof ApplicationFailure && (err.details?.[0] as { code?: string } | undefined)?.code === '23514';
        if (!failed) throw err;
        // Existing rows break the rule: take the NOT VALID constraint away again so the step leaves nothing behind.
        await inStepTransaction(i, 'drop the unvalidated constraint', async (db) => {
          await sql.dropConstraint(db, table, constraint);
          await sql.setStepEffect(db, i.rolloutId, i.stepId, { effect: 'none', phase: null, detail: {} });
        });
        throw failure(
          STEP_VALIDATION_FAILED,
          step.kind === 'setNotNull'
            ? `step "${i.stepId}": ${table}.${step.column} still has NULLs, so it cannot be made NOT NULL; backfill it first (${err.message})`
            : `step "${i.stepId}": existing rows of ${table} violate CHECK (${step.expression}); fix the data or the expression (${err.message})`,
          { stepId: i.stepId },
        );
      }
      if (step.kind === 'addCheck') {
        log(detail);
        return { alreadyDone: false, detail };
      }
    }

    // setNotNull, phase 'validated'
    return inStepTransaction(i, 'SET NOT NULL', async (db, row) => {
      if (row.effect === 'applied') return { alreadyDone: true, detail: row.detail };
      if (!detail.wasNotNull) {
        await sql.setColumnNotNull(db, table, (step as { column: string }).column);
        await sql.dropConstraint(db, table, constraint);
      }
      await sql.setStepEffect(db, i.rolloutId, i.stepId, { effect: 'applied', phase: 'validated', detail });
      await recordApplied(db, i, detail, hash);
      log(detail);
      return { alreadyDone: false, detail };
    });
  }

  async function recordApplied(db: Queryable, i: StepInput, detail: Record<string, unknown>, hash: string | undefined): Promise<void> {
    await sql.recordRolloutEvent(db, { workflowId: i.workflowId, event: 'step_applied', subject: i.stepId, detail: { kind: i.step.kind, table: i.table, transformHash: hash, ...detail }, actor: i.actor });
  }

  /**
   * The new shape of the table (what readers of `version` see) and the legacy
   * shape (version - 1), each a schema holding one view named like the table.
   */
  async function expose(db: PoolClient, i: StepInput, step: Extract<RolloutStep, { kind: 'expose' }>): Promise<Record<string, unknown>> {
    const table = canonicalTable(i.table);
    const mine = i.allSteps.filter((s) => canonicalTable(s.table) === table);
    const columns = (await sql.tableColumns(db, table)).map((c) => c.name);
    const present = new Set(columns);
    const alters = mine.flatMap((s) => (s.step.kind === 'alterColumn' && present.has(newColumnOf(s.step)) ? [s.step] : []));
    const drops = new Set(mine.flatMap((s) => (s.step.kind === 'contract' ? (s.step.drops ?? []) : [])));
    const added = new Set(mine.flatMap((s) => (s.step.kind === 'addColumn' ? [s.step.column] : [])));
    const introduced = new Set(alters.map(newColumnOf));

    const newShape: { source: string; as: string }[] = [];
    for (const c of columns) {
      if (introduced.has(c)) continue; // shown in the place of the column it replaces
      const alter = alters.find((a) => a.column === c);
      if (alter) newShape.push({ source: newColumnOf(alter), as: alter.newName ?? alter.column });
      else if (!drops.has(c)) newShape.push({ source: c, as: c });
    }
    const legacyShape = columns.filter((c) => !added.has(c) && !introduced.has(c)).map((c) => ({ source: c, as: c }));

    const schema = viewSchemaName(table, step.version);
    const previous = (await sql.lockReadPath(db, table)) ?? null;
    const created: string[] = [];
    if (await sql.schemaExists(db, schema)) {
      // a canary widening (10% then 100%) exposes the version this rollout already exposed: only the flag moves
      const isOurs = previous?.workflow_id === i.workflowId && previous.version === step.version;
      if (!isOurs) {
        throw failure(STEP_SETUP_ERROR, `step "${i.stepId}": version: schema ${schema} already exists, so version ${step.version} of ${table} was exposed before; expose a higher version or drop that schema`);
      }
    } else {
      await sql.createVersionView(db, { schema, table, columns: newShape });
      created.push(schema);
    }
    const legacy = step.version > 1 ? viewSchemaName(table, step.version - 1) : null;
    if (legacy && legacy !== schema && !(await sql.schemaExists(db, legacy))) {
      await sql.createVersionView(db, { schema: legacy, table, columns: legacyShape });
      created.push(legacy);
    }
    await sql.setReadPath(db, { table_name: table, version: step.version, percent: step.percent, previous_version: previous?.version ?? null, workflow_id: i.workflowId });
    const exposedAt = (await sql.transactionTime(db)).toISOString();
    return { viewSchema: schema, legacySchema: legacy, createdSchemas: created, previousFlag: previous, version: step.version, percent: step.percent, exposedAt };
  }

  /** Irreversible: removes what the rollout kept around for the old shape. */
  async function contract(db: PoolClient, i: StepInput): Promise<Record<string, unknown>> {
    const table = canonicalTable(i.table);
    const step = i.step as Extract<RolloutStep, { kind: 'contract' }>;
    const mine = i.allSteps.filter((s) => canonicalTable(s.table) === table);
    const droppedTriggers: string[] = [];
    for (const s of mine) {
      if (s.step.kind !== 'addColumn' && s.step.kind !== 'alterColumn') continue;
      const trigger = triggerOf(i, s);
      await sql.dropStepTrigger(db, table, trigger);
      droppedTriggers.push(trigger);
    }
    // legacy views read the old columns: they go before the columns do
    const exposed = Math.max(0, ...mine.map((s) => (s.step.kind === 'expose' ? s.step.version : 0)));
    const droppedSchemas: string[] = [];
    for (let v = 0; v < exposed; v++) {
      const schema = viewSchemaName(table, v);
      if (!(await sql.schemaExists(db, schema))) continue;
      await sql.dropVersionView(db, schema, table);
      droppedSchemas.push(schema);
    }
    const columns = new Set((await sql.tableColumns(db, table)).map((c) => c.name));
    const droppedColumns: string[] = [];
    const renamed: string[] = [];
    for (const c of step.drops ?? []) {
      if (!columns.has(c)) continue;
      await sql.dropColumn(db, table, c);
      columns.delete(c);
      droppedColumns.push(c);
    }
    for (const s of mine) {
      if (s.step.kind !== 'alterColumn' || s.step.newName !== undefined) continue;
      const from = newColumnOf(s.step);
      if (!columns.has(from)) continue;
      if (columns.has(s.step.column)) {
        await sql.dropColumn(db, table, s.step.column);
        droppedColumns.push(s.step.column);
      }
      await sql.renameColumn(db, table, from, s.step.column);
      renamed.push(`${from} -> ${s.step.column}`);
    }
    return { droppedTriggers, droppedSchemas, droppedColumns, renamed };
  }

  async function revertStep(i: StepInput): Promise<{ alreadyReverted: boolean }> {
    const hash = stepHash(i.step);
    const table = canonicalTable(i.table);
    return inStepTransaction(i, 'revert', async (db, row) => {
      if (row.effect === 'reverted') return { alreadyReverted: true };
      // nothing reached the database (a setNotNull/addCheck phase counts as something)
      const isUntouched = SCHEMA_KINDS.has(i.step.kind) && row.effect === 'none' && row.phase === null;
      if (i.step.kind === 'contract' && !isUntouched) {
        throw failure(IRREVERSIBLE, `step "${i.stepId}" (contract on ${i.table}) dropped the old columns and cannot be reverted; restore from a backup if you must`);
      }
      if (!isUntouched) await revertEffect(db, i, table, row);
      await sql.setStepEffect(db, i.rolloutId, i.stepId, { effect: 'reverted', phase: null, detail: row.detail });
      await sql.setStepState(db, { rolloutId: i.rolloutId, stepId: i.stepId, kind: i.step.kind, table, state: 'reverted', actor: i.actor });
      await sql.recordRolloutEvent(db, { workflowId: i.workflowId, event: 'step_reverted', subject: i.stepId, detail: { kind: i.step.kind, table: i.table, transformHash: hash, wasApplied: !isUntouched }, actor: i.actor });
      logger.info({ rollout: i.rolloutName, step: i.stepId, kind: i.step.kind, table: i.table, transformHash: hash, wasApplied: !isUntouched }, `step ${i.stepId} (${i.step.kind} on ${i.table}) reverted`);
      return { alreadyReverted: isUntouched };
    });
  }

  async function revertEffect(db: PoolClient, i: StepInput, table: string, row: sql.StepRow): Promise<void> {
    const step = i.step;
    const d = row.detail as Record<string, unknown>;
    switch (step.kind) {
      case 'addColumn':
        await sql.dropStepTrigger(db, table, triggerOf(i, { id: i.stepId, table, step }));
        await sql.dropColumn(db, table, step.column);
        return;
      case 'alterColumn':
        await sql.dropStepTrigger(db, table, triggerOf(i, { id: i.stepId, table, step }));
        await sql.dropColumn(db, table, newColumnOf(step));
        return;
      case 'setNotNull':
        if (d.wasNotNull) return;
        if (row.effect === 'applied') await sql.dropColumnNotNull(db, table, step.column);
        await sql.dropConstraint(db, table, sql.notNullCheckName(table, step.column));
        return;
      case 'addCheck':
        await sql.dropConstraint(db, table, step.name);
        return;
      case 'sql':
        await sql.runUserStatements(db, step.revert);
        return;
      case 'expose': {
        for (const schema of [...((d.createdSchemas as string[] | undefined) ?? [])].reverse()) await sql.dropVersionView(db, schema, table);
        const previous = d.previousFlag as sql.ReadPathRow | null | undefined;
        if (previous) await sql.setReadPath(db, previous);
        else await sql.deleteReadPath(db, table);
        return;
      }
      case 'contract':
      case 'backfill':
      case 'gate':
      case 'soak':
      case 'approval':
        return;
    }
  }

  async function runChecks(i: RunChecksInput): Promise<CheckResult[]> {
    const stop = heartbeating();
    const table = canonicalTable(i.table);
    const results: CheckResult[] = [];
    try {
      for (const check of i.checks) {
        let value: string | null = null;
        let error: string | undefined;
        try {
          value = await withTransaction(pool, (db) => sql.readOnlyScalar(db, check.sql, CHECK_STATEMENT_TIMEOUT_MS));
        } catch (err) {
          const code = (err as { code?: string })?.code;
          // a dropped connection says nothing about the check: let Temporal retry
          if (classifyPgError(err) === 'transient' && code !== '57014') throw err;
          error = pgMessage(err);
        }
        results.push(evaluateCheck(i, check, value, error));
      }
      await withTransaction(pool, async (db) => {
        for (const r of results) {
          await sql.recordGateResult(db, { rolloutId: i.rolloutId, stepId: i.stepId, attempt: i.attempt, ...r });
        }
      });
    } finally {
      stop();
    }
    for (const r of results) {
      metrics?.gateResults.inc({ kind: 'rollout', table, check: r.name, result: r.ok ? 'pass' : 'fail' });
      metrics?.gateDivergence.set({ kind: 'rollout', table, check: r.name }, r.deviation !== null && Number.isFinite(r.deviation) ? r.deviation : r.ok ? 0 : 1);
    }
    logger.info({ workflowId: i.workflowId, step: i.stepId, attempt: i.attempt, results }, `gate ${i.stepId}: ${results.filter((r) => r.ok).length}/${results.length} checks passed`);
    return results;
  }

  function evaluateCheck(i: RunChecksInput, check: GateCheck, value: string | null, error?: string): CheckResult {
    const tol = check.tolerance ? ` (± ${check.tolerance})` : '';
    const key = `${i.stepId}/${check.name}`;
    const expected = check.expect ? describeExpect(check.expect, check.tolerance) : `unchanged from ${i.baselines[key] ?? 'NULL'}${tol}`;
    if (error !== undefined) return { name: check.name, ok: false, value: null, expected, deviation: null, error };
    if (check.expect) {
      const r = evaluateExpect(value === null ? Number.NaN : Number(value), check.expect, check.tolerance);
      return { name: check.name, ok: r.ok, value, expected, deviation: Number.isFinite(r.deviation) ? r.deviation : null };
    }
    if (!(key in i.baselines)) {
      return { name: check.name, ok: false, value, expected, deviation: null, error: `no baseline was taken for "${key}" at the rollout start` };
    }
    const baseline = i.baselines[key];
    const isNumber = (s: string | null): s is string => s !== null && s.trim() !== '' && Number.isFinite(Number(s));
    if (isNumber(value) && isNumber(baseline)) {
      const deviation = Math.max(0, Math.abs(Number(value) - Number(baseline)) - check.tolerance);
      return { name: check.name, ok: deviation === 0, value, expected, deviation };
    }
    const ok = value === baseline;
    return { name: check.name, ok, value, expected, deviation: ok ? 0 : null };
  }

  async function recordStepState(i: { rolloutId: number; workflowId: string; stepId: string; kind: string; table: string; state: StepState; detail?: unknown; actor?: string }): Promise<void> {
    await withTransaction(pool, async (db) => {
      await sql.setStepState(db, { ...i, table: canonicalTable(i.table) });
      await sql.recordRolloutEvent(db, { workflowId: i.workflowId, event: `step_${i.state}`, subject: i.stepId, detail: i.detail, actor: i.actor });
    });
  }

  async function recordRolloutEvent(i: { rolloutId: number; workflowId: string; event: string; subject?: string; detail?: unknown; actor?: string }): Promise<void> {
    await sql.recordRolloutEvent(pool, i);
  }

  async function compareWithBefore(db: Queryable, rolloutId: number, tables: string[], save: boolean): Promise<CatalogComparison[]> {
    const before = await sql.loadCatalogSnapshots<CatalogSnapshot>(db, rolloutId, 'before');
    const out: CatalogComparison[] = [];
    for (const t of tables) {
      const now = await snapshotCatalog(db, t, viewSchemaPattern(t));
      if (save) await sql.saveCatalogSnapshot(db, rolloutId, t, 'after', now);
      const b = before.get(t);
      const diff = b ? compareCatalogs(b, now) : [`${t}: no catalog snapshot was taken at the rollout start`];
      out.push({ table: t, equal: diff.length === 0, diff });
    }
    return out;
  }

  async function finishRollout(i: { rolloutId: number; workflowId: string; state: 'completed' | 'rolled_back' | 'failed' | 'cancelled'; reason?: string; actor?: string }): Promise<{ catalog: CatalogComparison[] }> {
    const result = await withTransaction(pool, async (db) => {
      const row = await sql.lockRollout(db, i.rolloutId);
      if (row.finished_at) {
        // a retried finish: the first one compared and released; say the same again
        await sql.releaseTables(db, i.workflowId);
        return { catalog: row.catalog_check ?? [], isNew: false, tables: row.tables, spec: row.spec as RolloutSpec };
      }
      const catalog = await compareWithBefore(db, i.rolloutId, row.tables, true);
      await sql.finishRolloutRow(db, { rolloutId: i.rolloutId, state: i.state, reason: i.reason, actor: i.actor, catalogCheck: catalog });
      const released = await sql.releaseTables(db, i.workflowId);
      await sql.recordRolloutEvent(db, { workflowId: i.workflowId, event: i.state, detail: { reason: i.reason ?? null, catalog, released }, actor: i.actor });
      return { catalog, isNew: true, tables: row.tables, spec: row.spec as RolloutSpec };
    });
    if (result.isNew) {
      if (i.state === 'rolled_back' || i.state === 'cancelled') metrics?.rollbacks.inc({ kind: 'rollout', table: canonicalTable(result.spec.table) });
      const unequal = result.catalog.filter((c) => !c.equal);
      const log = i.state === 'rolled_back' && unequal.length ? logger.warn.bind(logger) : logger.info.bind(logger);
      log({ workflowId: i.workflowId, rolloutId: i.rolloutId, state: i.state, reason: i.reason, catalog: result.catalog }, `rollout ${i.state}${i.state === 'rolled_back' ? (unequal.length ? `; catalog differs from before: ${unequal.flatMap((c) => c.diff).join('; ')}` : '; catalog equal to before') : ''}`);
    }
    return { catalog: result.catalog };
  }

  async function catalogDiff(i: { rolloutId: number }): Promise<CatalogComparison[]> {
    const row = await sql.getRollout(pool, i.rolloutId);
    if (!row) throw failure(STEP_SETUP_ERROR, `rolloutId: rollout ${i.rolloutId} does not exist`);
    return compareWithBefore(pool, i.rolloutId, row.tables, false);
  }

  return { beginRollout, applyStep, revertStep, runChecks, recordStepState, recordRolloutEvent, finishRollout, catalogDiff };
}

export type RolloutActivities = ReturnType<typeof createRolloutActivities>;
