import type { Pool } from 'pg';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import type { RolloutSpec } from '../../steps/spec';
import { parseRolloutSpec } from '../../steps/spec';
import { startRollout } from '../../client/runs';
import type { RolloutProgress } from '../../workflows/definitions';
import { progressQuery, approveSignal, rollbackSignal } from '../../workflows/definitions';
import { connectionFor, waitFor, unique, pool as filePool, client as fileClient, taskQueue as fileQueue } from './harness';

export { connectionFor };

/** An orders table: the legacy columns a rollout must never change. */
export async function makeOrders(pool: Pool, name: string, rows: number): Promise<string> {
  await pool.query(
    `CREATE TABLE public."${name}" (id bigint PRIMARY KEY, customer_id int NOT NULL, amount numeric(12,2) NOT NULL, qty int NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL)`,
  );
  await pool.query(
    `INSERT INTO public."${name}" SELECT g, 1 + g % 100, round((g % 1000) * 1.37, 2), 1 + g % 7, (ARRAY['new','paid','shipped'])[1 + g % 3], timestamptz '2026-01-01' + make_interval(hours => g % 240)
       FROM generate_series(1, $1::int) g`,
    [rows],
  );
  await pool.query(`ANALYZE public."${name}"`);
  return `public.${name}`;
}

/**
 * The table's schema as the catalog has it — columns, defaults, constraints,
 * indexes (and their validity), comments, triggers and dependent views — written independently of stagefill's
 * own snapshot code, so the tests do not trust what they test.
 */
export async function catalogOf(pool: Pool, table: string): Promise<unknown> {
  const [schema, name] = table.split('.');
  const q = async (sql: string) => (await pool.query(sql, [schema, name])).rows;
  const rel = `(SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)`;
  return {
    columns: await q(`SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull, pg_get_expr(d.adbin, d.adrelid) AS def
                        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                       WHERE a.attrelid = ${rel} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY attname`),
    constraints: await q(
      `SELECT conname, pg_get_constraintdef(oid) AS def, convalidated FROM pg_constraint WHERE conrelid = ${rel} ORDER BY conname`,
    ),
    indexes: await q(
      `SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def, indisvalid FROM pg_index WHERE indrelid = ${rel} ORDER BY 1`,
    ),
    comments:
      await q(`SELECT 'table' AS on, d.description FROM pg_description d WHERE d.classoid = 'pg_class'::regclass AND d.objoid = ${rel} AND d.objsubid = 0
                       UNION ALL SELECT 'column ' || a.attname, d.description FROM pg_description d JOIN pg_attribute a ON a.attrelid = d.objoid AND a.attnum = d.objsubid
                        WHERE d.classoid = 'pg_class'::regclass AND d.objoid = ${rel} AND d.objsubid > 0
                       UNION ALL SELECT 'index ' || c.relname, d.description FROM pg_description d JOIN pg_index i ON i.indexrelid = d.objoid JOIN pg_class c ON c.oid = i.indexrelid
                        WHERE d.classoid = 'pg_class'::regclass AND i.indrelid = ${rel}
                       UNION ALL SELECT 'constraint ' || k.conname, d.description FROM pg_description d JOIN pg_constraint k ON k.oid = d.objoid
                        WHERE d.classoid = 'pg_constraint'::regclass AND k.conrelid = ${rel}
                       ORDER BY 1`),
    triggers: await q(
      `SELECT tgname, pg_get_triggerdef(oid) AS def FROM pg_trigger WHERE tgrelid = ${rel} AND NOT tgisinternal ORDER BY tgname`,
    ),
    views:
      await q(`SELECT DISTINCT v.oid::regclass::text AS view FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class
                     WHERE d.refobjid = ${rel} AND v.oid <> ${rel} ORDER BY 1`),
    viewSchemas: await q(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1 || '\\_' || $2 || '\\_v%' ORDER BY 1`),
  };
}

/** A checksum of the legacy columns: unchanged means no legacy data was touched. */
export async function legacyChecksum(pool: Pool, table: string): Promise<string> {
  const { rows } = await pool.query(
    `SELECT md5(string_agg(concat_ws(':', id, customer_id, amount, qty, status, created_at), ',' ORDER BY id)) AS sum FROM ${table}`,
  );
  return rows[0].sum;
}

export async function startSpec(client: Client, taskQueue: string, spec: unknown): Promise<{ spec: RolloutSpec; handle: WorkflowHandle }> {
  const parsed = parseRolloutSpec(spec);
  const run = await startRollout(connectionFor(client, taskQueue), parsed, { actor: 'test' });
  return { spec: parsed, handle: client.workflow.getHandle(run.workflowId) };
}

export async function progressOf(handle: WorkflowHandle): Promise<RolloutProgress> {
  return (await handle.query(progressQuery)) as RolloutProgress;
}

/** The rollout's outcome: its result, or for a rolled-back one the RolledBack failure's details. */
export async function outcome(handle: WorkflowHandle): Promise<{
  state: string;
  failure?: string;
  result?: { state: string; catalog?: { table: string; equal: boolean; diff: string[] }[]; rollbackReason: string | null };
}> {
  try {
    const result = (await handle.result()) as { state: string };
    return { state: result.state, result: result as never };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const cause = err.cause as { message?: string; type?: string; details?: unknown[] } | undefined;
    const details = cause?.details?.[0] as { state: string } | undefined;
    return { state: details?.state ?? `failed:${cause?.type ?? '?'}`, failure: cause?.message, result: details as never };
  }
}

/** Waits until the rollout stands at an approval step. */
export function waitForApproval(handle: WorkflowHandle, timeoutMs?: number, everyMs?: number): Promise<boolean> {
  return waitFor('the approval step', async () => (await progressOf(handle)).state === 'waiting_approval', timeoutMs, everyMs);
}

export const approve = (handle: WorkflowHandle) => handle.signal(approveSignal, { by: 'test' });
export const rollBack = (handle: WorkflowHandle, reason = 'second run: roll back at approval') =>
  handle.signal(rollbackSignal, { by: 'test', reason });

/** The step the cents rollouts start with: amount_cents = round(amount * 100), backfilled in chunks of `chunkSize`. */
export const centsColumn = (chunkSize: number) => ({
  kind: 'addColumn',
  column: 'amount_cents',
  type: 'bigint',
  up: 'round(amount * 100)::bigint',
  backfill: { chunkSize },
});

/** A gate whose one check (`name`) counts the rows whose amount_cents is not round(amount * 100): it must be 0. */
export const centsGate = (table: string, name = 'cents match amount') => ({
  kind: 'gate',
  checks: [
    { name, sql: `SELECT count(*) FROM ${table} WHERE amount_cents IS DISTINCT FROM round(amount * 100)::bigint`, expect: { eq: 0 } },
  ],
});

/** The steps that end a spec of the step-kind tests: an approval to stop at, then contract. */
export const approvalThenContract = [{ kind: 'approval', timeout: '2m' }, { kind: 'contract' }];

/** Whether the relation (a quoted or plain name) exists. */
export const exists = async (relation: string) =>
  (await filePool.query(`SELECT to_regclass($1) IS NOT NULL AS e`, [relation])).rows[0].e as boolean;

/** The relation's column names, in order, as a SELECT * sees them. */
export const columnNames = async (relation: string) =>
  (await filePool.query(`SELECT * FROM ${relation} LIMIT 0`)).fields.map((f) => f.name);

/** The quoted name of the table's view in version `version`'s schema (`name`: the table's name in that version). */
export const viewOf = (table: string, version: number, name = table.split('.')[1]) => `"${table.replace('.', '_')}_v${version}"."${name}"`;

/** catalogOf (columns, constraints, indexes, triggers, views, view schemas) and the comments on the table and its columns. */
export async function snapshot(table: string): Promise<unknown> {
  const [schema, name] = table.split('.');
  const { rows: comments } = await filePool.query(
    `SELECT coalesce(a.attname, '') AS col, d.description
       FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
      WHERE n.nspname = $1 AND c.relname = $2 ORDER BY 1`,
    [schema, name],
  );
  return { ...((await catalogOf(filePool, table)) as object), comments };
}

/** Starts a rollout (`kind: 'rollout'` and a unique name added) on the file's task queue (`useStack({ worker: true })`). */
export function startOnFileWorker(spec: object): Promise<{ spec: RolloutSpec; handle: WorkflowHandle }> {
  return startSpec(fileClient, fileQueue, { kind: 'rollout', name: unique('r'), ...spec });
}

/**
 * Starts a rollout on the file's task queue (`useStack({ worker: true })`), waits at its approval step, runs
 * `atApproval`, then approves (forward) or signals rollback, and returns its outcome.
 */
export async function runThroughApproval(
  spec: object,
  how: 'forward' | 'rollback',
  atApproval: (handle: WorkflowHandle) => Promise<void> = async () => {},
) {
  const { handle } = await startOnFileWorker({ rollbackWindow: '1s', ...spec });
  await waitForApproval(handle);
  await atApproval(handle);
  await (how === 'forward' ? approve(handle) : rollBack(handle));
  const out = await outcome(handle);
  return { handle, out };
}

/**
 * Every object of the tables named `<prefix>...` that looks like stagefill's temporary ones (constraints, indexes and
 * columns named _sfdup_/_sfnn_/stagefill, an invalid index), any trigger left, and with `viewSchemas` any version
 * schema but v2's: nothing may be left after contract.
 */
export async function leftovers(pool: Pool, prefix: string, opts: { viewSchemas?: boolean } = {}): Promise<string[]> {
  const schemas = opts.viewSchemas
    ? `
     UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE starts_with(nspname, 'public_' || $1) AND nspname !~ '_v2$'`
    : '';
  const { rows } = await pool.query(
    `WITH mine AS (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' AND starts_with(c.relname, $1))
     SELECT 'constraint ' || conname AS what FROM pg_constraint WHERE conrelid IN (SELECT oid FROM mine) AND conname ~ '(_sfdup_|_sfnn_|stagefill)'
     UNION ALL SELECT 'index ' || c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid IN (SELECT oid FROM mine) AND (c.relname ~ '(_sfdup_|_sfnn_|stagefill)' OR NOT i.indisvalid)
     UNION ALL SELECT 'column ' || attname FROM pg_attribute WHERE attrelid IN (SELECT oid FROM mine) AND attname ~ 'stagefill' AND NOT attisdropped
     UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM mine) AND NOT tgisinternal${schemas}`,
    [prefix],
  );
  return rows.map((r) => r.what);
}

/** The statement is refused with this SQLSTATE (and, given, by this constraint). */
export async function refused(sql: string, code: string, constraint?: string): Promise<void> {
  await expect(filePool.query(sql)).rejects.toMatchObject(constraint ? { code, constraint } : { code });
}
