import type { Pool, PoolClient } from 'pg';
import { itemAt } from '../core/common/checked';
import { ident, qualified } from '../db/identifiers';
import { prepared } from '../db/pool';

/**
 * The statements of bench/chunk-cost.ts: its two tables (pgbench_accounts'
 * shape, one keyed by an integer, one by (tenant_id, aid) with tenant 1
 * holding half the rows, as bench/keys.ts builds them), the bare chunk (the
 * benchmark's, bench/sql.ts), and the readings of pg_stat_statements and the
 * WAL position.
 */

export interface CostTable {
  name: string;
  title: string;
  table: string;
  key: string[];
  keyType: string;
  /** The whole key range [lo, hi) as stored key text, and its rows. */
  lo: string;
  hi: string;
  rows: number;
  range: string;
}

const CHECKPOINTS = `${ident('bench')}.${ident('chunk_checkpoints')}`;

/** Both tables, filled once and vacuumed (the benchmark's unmeasured first fill), and the bare loop's checkpoint table. */
export async function createTables(pool: Pool, rows: number): Promise<[CostTable, CostTable]> {
  await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await pool.query(`DROP TABLE IF EXISTS public.cost_accounts, public.cost_tenant_accounts`);
  await pool.query(`CREATE TABLE public.cost_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84), cents bigint)`);
  await pool.query(`INSERT INTO public.cost_accounts (aid, bid, abalance, filler) SELECT g, 1, 0, '' FROM generate_series(1, $1::int) g`, [
    rows,
  ]);
  await pool.query(
    `CREATE TABLE public.cost_tenant_accounts (tenant_id int NOT NULL, aid int NOT NULL, bid int, abalance int, filler char(84), cents bigint, PRIMARY KEY (tenant_id, aid))`,
  );
  await pool.query(
    `INSERT INTO public.cost_tenant_accounts (tenant_id, aid, bid, abalance, filler)
     SELECT CASE WHEN g % 2 = 0 THEN 1 ELSE 2 + g % 99 END, g, 1, 0, '' FROM generate_series(1, $1::int) g`,
    [rows],
  );
  await pool.query(`UPDATE public.cost_accounts SET cents = 0`);
  await pool.query(`UPDATE public.cost_tenant_accounts SET cents = 0`);
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${ident('bench')}`);
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${CHECKPOINTS} (run text NOT NULL, lo bigint NOT NULL, hi bigint NOT NULL, rows bigint NOT NULL, duration_ms integer NOT NULL,
       committed_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (run, lo))`,
  );
  await pool.query('VACUUM (ANALYZE)');
  return [
    {
      name: 'integer',
      title: 'integer key, cut by arithmetic',
      table: 'public.cost_accounts',
      key: ['aid'],
      keyType: 'integer',
      lo: '1',
      hi: String(rows + 1),
      rows,
      range: `${ident('aid')} >= :lo AND ${ident('aid')} < :hi`,
    },
    {
      name: 'composite',
      title: 'composite (tenant_id, aid) key, cut from the index',
      table: 'public.cost_tenant_accounts',
      key: ['tenant_id', 'aid'],
      keyType: JSON.stringify(['integer', 'integer']),
      lo: JSON.stringify(['1', '0']),
      hi: JSON.stringify(['101', '0']),
      rows,
      range: `(${ident('tenant_id')}, ${ident('aid')}) >= :lo AND (${ident('tenant_id')}, ${ident('aid')}) < :hi`,
    },
  ];
}

export function transformOf(t: CostTable, tag: number): string {
  return `UPDATE ${qualified(t.table)} SET ${ident('cents')} = abalance::bigint * 100 + ${Math.trunc(tag)} WHERE ${t.range}`;
}

/** One bare chunk as bench/contenders.ts runs it: BEGIN, the UPDATE, the checkpoint insert (commit without the WAL flush), COMMIT. */
export async function bareChunk(db: PoolClient, tag: number, lo: number, hi: number): Promise<void> {
  await db.query('BEGIN');
  const r = await db.query(
    prepared(
      db,
      `UPDATE public.cost_accounts SET ${ident('cents')} = abalance::bigint * 100 + ${Math.trunc(tag)} WHERE aid >= $1 AND aid < $2`,
      [lo, hi],
    ),
  );
  await db.query(
    prepared(
      db,
      `INSERT INTO ${CHECKPOINTS} (run, lo, hi, rows, duration_ms)
       SELECT $1, $2, $3, $4, $5 FROM (SELECT set_config('synchronous_commit', CASE WHEN $6 THEN 'off' ELSE current_setting('synchronous_commit') END, true)) AS commit_mode`,
      [`bare-${tag}`, lo, hi, r.rowCount ?? 0, 1, true],
    ),
  );
  await db.query('COMMIT');
}

/** Dead rows gone, dirty pages written, statistics reset: every contender starts from the same state. Returns the WAL position. */
export async function levelled(pool: Pool): Promise<string> {
  await pool.query('VACUUM (ANALYZE)');
  await pool.query('CHECKPOINT');
  await pool.query('SELECT pg_stat_statements_reset()');
  const { rows } = await pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return itemAt(rows, 0, 'the WAL position row').lsn;
}

export async function walSince(pool: Pool, lsn: string): Promise<number> {
  const { rows } = await pool.query<{ d: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::bigint AS d', [lsn]);
  return Number(itemAt(rows, 0, 'the WAL difference row').d);
}

export interface StatementCost {
  query: string;
  calls: number;
  buffers: number;
  dirtied: number;
  walRecords: number;
  walBytes: number;
  /** The chunk's UPDATE of the table: what every chunk loop runs. */
  isTransform: boolean;
}

/** Every statement since `levelled` but the readings themselves, most called first. */
export async function statementCosts(pool: Pool): Promise<StatementCost[]> {
  const { rows } = await pool.query<{ q: string; calls: string; buffers: string; dirtied: string; wal_records: string; wal_bytes: string }>(
    `SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS q, calls, shared_blks_hit + shared_blks_read AS buffers,
            shared_blks_dirtied AS dirtied, wal_records, wal_bytes
       FROM pg_stat_statements
      WHERE query !~ '(pg_stat_statements|pg_current_wal_lsn|pg_wal_lsn_diff)'
      ORDER BY calls DESC, query`,
  );
  return rows.map((r) => ({
    query: r.q,
    calls: Number(r.calls),
    buffers: Number(r.buffers),
    dirtied: Number(r.dirtied),
    walRecords: Number(r.wal_records),
    walBytes: Number(r.wal_bytes),
    isTransform: /^UPDATE "?public"?\."?cost_/.test(r.q),
  }));
}
