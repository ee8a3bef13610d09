import { Pool } from 'pg';
import { Client, WorkflowFailedError, WorkflowHandle } from '@temporalio/client';
import { parseRolloutSpec, RolloutSpec } from '../../spec';
import { startRollout } from '../../client/runs';
import type { StagefillConnection } from '../../client/connection';
import type { RolloutProgress } from '../../workflows/definitions';
import { progressQuery } from '../../workflows/definitions';
import { env } from './harness';

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

export function connectionFor(client: Client, taskQueue: string): StagefillConnection {
  return { client, taskQueue, namespace: env().namespace, address: env().address, close: async () => {} };
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
