import { spawnSync } from 'node:child_process';
import type { Pool, PoolClient } from 'pg';
import { ident, own, qualified } from '../db/identifiers';
import { prepared } from '../db/pool';
import { present } from '../core/common/checked';

/**
 * The benchmark's own statements: the contenders stagefill is measured
 * against, and the table preparation. stagefill's statements stay in db/.
 */

export const TABLE = 'public.pgbench_accounts';
export const KEY = 'aid';
export const COLUMN = 'abalance_cents';
export const COLUMN_TYPE = 'bigint';
/** The new column's value; a per-run tag makes every run write every row anew, and lets the result be checked. */
export const expressionFor = (tag: number) => `abalance::bigint * 100 + ${Math.trunc(tag)}`;

const accounts = qualified(TABLE);

export async function addColumn(pool: Pool): Promise<void> {
  await pool.query(`ALTER TABLE ${accounts} ADD COLUMN IF NOT EXISTS ${ident(COLUMN)} ${COLUMN_TYPE}`);
}

export async function keyRange(pool: Pool): Promise<{ from: number; to: number; rows: number }> {
  const { rows } = await pool.query<{ lo: string; hi: string; n: string }>(
    `SELECT min(${ident(KEY)}) AS lo, max(${ident(KEY)}) + 1 AS hi, count(*) AS n FROM ${accounts}`,
  );
  const r = present(rows[0], 'the key range row');
  return { from: Number(r.lo), to: Number(r.hi), rows: Number(r.n) };
}

/**
 * Levels the field before each contender: dead tuples gone, dirty buffers
 * written, free space mapped, and the kernel's write-back of all that done,
 * so no contender's commits wait behind the previous one's dirty pages.
 */
export async function settle(pool: Pool): Promise<void> {
  // the whole database: stagefill's own partition and checkpoint rows churn too, and autovacuum is off
  await pool.query('VACUUM (ANALYZE)');
  await pool.query('CHECKPOINT');
  spawnSync('sync');
}

/** Rows whose new column is not what `tag`'s expression gives: 0 after a complete, correct fill. */
export async function wrongRows(pool: Pool, tag: number): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM ${accounts} WHERE ${ident(COLUMN)} IS DISTINCT FROM (${expressionFor(tag)})`,
  );
  return Number(present(rows[0], 'the count row').n);
}

/** Contender 1: one statement, no orchestration. */
export async function singleUpdate(pool: Pool, tag: number): Promise<number> {
  const r = await pool.query(`UPDATE ${accounts} SET ${ident(COLUMN)} = ${expressionFor(tag)}`);
  return r.rowCount ?? 0;
}

/**
 * One chunk's UPDATE over [lo, hi), values bound. `isPrepared`: planned once
 * per connection, as stagefill's chunk statements are (db/pool.ts prepared).
 */
export async function updateRange(db: PoolClient, tag: number, lo: number, hi: number, isPrepared = false): Promise<number> {
  const k = ident(KEY);
  const text = `UPDATE ${accounts} SET ${ident(COLUMN)} = ${expressionFor(tag)} WHERE ${k} >= $1 AND ${k} < $2`;
  const r = await db.query(isPrepared ? prepared(db, text, [lo, hi]) : { text, values: [lo, hi] });
  return r.rowCount ?? 0;
}

/** The transform stagefill runs, in its :lo / :hi form. */
export function stagefillTransform(tag: number): string {
  const k = ident(KEY);
  return `UPDATE ${accounts} SET ${ident(COLUMN)} = ${expressionFor(tag)} WHERE ${k} >= :lo AND ${k} < :hi`;
}

/** CPU in one backend and nothing else: no table, no lock, no WAL. */
export async function burn(db: PoolClient, loops: number): Promise<void> {
  await db.query(prepared(db, 'SELECT count(*) FROM generate_series(1, $1::int)', [loops]));
}

/** How many loops of `burn` take about `ms` on this machine. */
export async function calibrateBurn(db: PoolClient, ms: number): Promise<number> {
  let loops = 10_000;
  for (let i = 0; i < 6; i++) {
    const t = performance.now();
    await burn(db, loops);
    const took = performance.now() - t;
    loops = Math.max(1000, Math.round((loops * ms) / Math.max(0.05, took)));
  }
  return loops;
}

const checkpoints = `${ident('bench')}.${ident('checkpoints')}`;

/** The bare contender's checkpoint table: what any exactly-once chunk loop must write with each chunk. */
export async function createCheckpointTable(pool: Pool): Promise<void> {
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${ident('bench')}`);
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${checkpoints} (run text NOT NULL, lo bigint NOT NULL, hi bigint NOT NULL, rows bigint NOT NULL, duration_ms integer NOT NULL,
       committed_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (run, lo))`,
  );
}

/**
 * The checkpoint row, prepared like stagefill's; with `isAsync`, the statement also makes the chunk's
 * commit skip the WAL flush, exactly as stagefill's checkpoint statement does
 * for every chunk but a partition's last (db/backfill/backfills.ts commitChunkCheckpoint).
 */
export async function insertCheckpoint(
  db: PoolClient,
  c: { run: string; lo: number; hi: number; rows: number; ms: number; isAsync: boolean },
): Promise<void> {
  await db.query(
    prepared(
      db,
      `INSERT INTO ${checkpoints} (run, lo, hi, rows, duration_ms)
       SELECT $1, $2, $3, $4, $5 FROM (SELECT set_config('synchronous_commit', CASE WHEN $6 THEN 'off' ELSE current_setting('synchronous_commit') END, true)) AS commit_mode`,
      [c.run, c.lo, c.hi, c.rows, Math.round(c.ms), c.isAsync],
    ),
  );
}

/** stagefill's own record of a backfill's chunks: how many, and their summed in-transaction time. */
export async function stagefillChunkTotals(
  pool: Pool,
  workflowId: string,
): Promise<{ chunks: number; sqlMs: number; rows: number; largest: number }> {
  const { rows } = await pool.query<{ chunks: string; ms: string; rows: string; largest: string }>(
    `SELECT count(*) AS chunks, COALESCE(sum(c.duration_ms), 0) AS ms, COALESCE(sum(c.rows), 0) AS rows, COALESCE(max(c.rows), 0) AS largest
       FROM ${own('checkpoints')} c JOIN ${own('backfills')} b ON b.id = c.backfill_id AND b.generation = c.generation
      WHERE b.workflow_id = $1`,
    [workflowId],
  );
  const r = present(rows[0], 'the checkpoint totals row');
  return { chunks: Number(r.chunks), sqlMs: Number(r.ms), rows: Number(r.rows), largest: Number(r.largest) };
}

export interface ServerFacts {
  version: string;
  settings: Record<string, string>;
}

const SHOWN = [
  'shared_buffers',
  'max_wal_size',
  'min_wal_size',
  'checkpoint_timeout',
  'synchronous_commit',
  'fsync',
  'wal_compression',
  'work_mem',
  'autovacuum',
];

/** The server's version and settings: the usual ones and any set for this run (`also`). */
export async function serverFacts(pool: Pool, also: string[] = []): Promise<ServerFacts> {
  const v = await pool.query<{ v: string }>('SELECT version() AS v');
  const s = await pool.query<{ name: string; setting: string }>(
    `SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name = ANY($1) ORDER BY name`,
    [[...SHOWN, ...also]],
  );
  return { version: present(v.rows[0], 'the version row').v, settings: Object.fromEntries(s.rows.map((r) => [r.name, r.setting])) };
}

/** Forgets every table's remembered throttle settings (stagefill.throttle_memory): a budgeted round that starts cold. */
export async function forgetThrottleMemory(pool: Pool): Promise<void> {
  await pool.query(`DELETE FROM ${own('throttle_memory')}`);
}
