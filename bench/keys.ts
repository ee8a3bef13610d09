import type { Pool } from 'pg';
import { ident, qualified } from '../db/identifiers';
import { COLUMN, COLUMN_TYPE, expressionFor } from './sql';
import { present } from '../core/common/checked';

/**
 * The key tables: pgbench_accounts' rows again under keys other than a dense
 * integer, so stagefill's general cut (the key `size` rows on, from the index)
 * is measured where the arithmetic cut cannot apply. Each table has the same
 * rows and columns as pgbench_accounts, and the same fill (the new column from
 * abalance and the run's tag) is timed: the single UPDATE against stagefill's
 * defaults, alone, best of the rounds.
 */
export interface KeyTable {
  id: 'uuid' | 'composite';
  title: string;
  table: string;
  key: string | string[];
  /** The transform's range predicate in :lo / :hi form. */
  range: string;
}

export const KEY_TABLES: KeyTable[] = [
  {
    id: 'uuid',
    title: 'uuid v4 key',
    table: 'public.bench_uuid_accounts',
    key: 'id',
    range: `${ident('id')} >= :lo AND ${ident('id')} < :hi`,
  },
  {
    id: 'composite',
    title: 'composite (tenant_id, aid) key, one tenant half the rows',
    table: 'public.bench_tenant_accounts',
    key: ['tenant_id', 'aid'],
    range: `(${ident('tenant_id')}, ${ident('aid')}) >= :lo AND (${ident('tenant_id')}, ${ident('aid')}) < :hi`,
  },
];

/** (Re)creates the key tables from pgbench_accounts: the same rows, a random uuid or a skewed tenant in front of aid. */
export async function createKeyTables(pool: Pool): Promise<void> {
  const [u, c] = KEY_TABLES.map((t) => qualified(t.table));
  await pool.query(`DROP TABLE IF EXISTS ${u}, ${c}`);
  await pool.query(
    `CREATE TABLE ${u} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aid int NOT NULL, bid int, abalance int, filler char(84), ${ident(COLUMN)} ${COLUMN_TYPE})`,
  );
  await pool.query(`INSERT INTO ${u} (aid, bid, abalance, filler) SELECT aid, bid, abalance, filler FROM pgbench_accounts`);
  await pool.query(
    `CREATE TABLE ${c} (tenant_id int NOT NULL, aid int NOT NULL, bid int, abalance int, filler char(84), ${ident(COLUMN)} ${COLUMN_TYPE}, PRIMARY KEY (tenant_id, aid))`,
  );
  // tenant 1 holds every even aid (half the rows); the odd ones spread over 99 others
  await pool.query(
    `INSERT INTO ${c} (tenant_id, aid, bid, abalance, filler) SELECT CASE WHEN aid % 2 = 0 THEN 1 ELSE 2 + aid % 99 END, aid, bid, abalance, filler FROM pgbench_accounts`,
  );
  await pool.query(`VACUUM (ANALYZE) ${u}, ${c}`);
}

export async function singleUpdateOn(pool: Pool, t: KeyTable, tag: number): Promise<number> {
  const r = await pool.query(`UPDATE ${qualified(t.table)} SET ${ident(COLUMN)} = ${expressionFor(tag)}`);
  return r.rowCount ?? 0;
}

export function transformOn(t: KeyTable, tag: number): string {
  return `UPDATE ${qualified(t.table)} SET ${ident(COLUMN)} = ${expressionFor(tag)} WHERE ${t.range}`;
}

export async function wrongRowsOn(pool: Pool, t: KeyTable, tag: number): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM ${qualified(t.table)} WHERE ${ident(COLUMN)} IS DISTINCT FROM (${expressionFor(tag)})`,
  );
  return Number(present(rows[0], 'the count row').n);
}

export async function rowsOf(pool: Pool, t: KeyTable): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${qualified(t.table)}`);
  return Number(present(rows[0], 'the count row').n);
}

/** Gone after their phase, so the load and growth phases see the database they always did. */
export async function dropKeyTables(pool: Pool): Promise<void> {
  await pool.query(`DROP TABLE IF EXISTS ${KEY_TABLES.map((t) => qualified(t.table)).join(', ')}`);
}
