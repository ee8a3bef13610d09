import type { Pool } from 'pg';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import type { RolloutSpec } from '../../steps/spec';
import { parseRolloutSpec } from '../../steps/spec';
import { startRollout } from '../../client/runs';
import type { RolloutProgress } from '../../workflows/definitions';
import { progressQuery, approveSignal, rollbackSignal } from '../../workflows/definitions';
import { connectionFor, waitFor, unique, pool as filePool, client as fileClient, taskQueue as fileQueue } from './harness';
import { catalogOf } from '../../chaos/sql';

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
  return { ...(await catalogOf(filePool, table)), comments };
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
