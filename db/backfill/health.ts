/**
 * The statements of the latency/replica-lag throttle: the probe's timed
 * lookup, replay positions of streaming replicas, and the control row the
 * probe writes and the leases read (stagefill.backfill_control).
 */
import type { Queryable } from '../pool';
import { prepared } from '../pool';
import { own, qualified, ident, SCHEMA } from '../identifiers';
import type { RememberedSettings } from '../../core/backfill/throttle-memory';
import { itemAt } from '../../core/common/checked';

/** How a random point of the key range is formed from [lo, hi) and a fraction, per key type. */
function pointIn(keyType: string): string {
  if (keyType === 'date') return `($1::date + floor($3::float8 * ($2::date - $1::date))::int)`;
  if (keyType.startsWith('timestamp')) return `($1::${keyType} + $3::float8 * ($2::${keyType} - $1::${keyType}))`;
  return `(($1::numeric + floor($3::float8 * ($2::numeric - $1::numeric)))::${keyType})`;
}

const ARITHMETIC_KEY = /^(smallint|integer|bigint|numeric|date|timestamp)/;

/**
 * The default probe: the first row at or after a random key of [lo, hi), by
 * the key's index, as an application's lookup by key does. Prepared once on
 * the probe's connection. A key without arithmetic (uuid, text, a composite
 * key) has no random point to pick: the probe reads the first row by the
 * key's leading column instead (an index lookup all the same); a spec that
 * wants a truer stand-in gives `throttle.latency.probe`.
 */
export async function probeKeyLookup(
  db: Queryable,
  t: { table: string; key: string | string[]; keyType: string },
  lo: string,
  hi: string,
  fraction: number,
): Promise<void> {
  if (Array.isArray(t.key) || !ARITHMETIC_KEY.test(t.keyType)) {
    const k = ident(Array.isArray(t.key) ? itemAt(t.key, 0, 'key column') : t.key);
    await db.query(prepared(db, `SELECT ${k} FROM ${qualified(t.table)} ORDER BY ${k} LIMIT 1`, []));
    return;
  }
  const k = ident(t.key);
  const text = `SELECT ${k} FROM ${qualified(t.table)} WHERE ${k} >= ${pointIn(t.keyType)} ORDER BY ${k} LIMIT 1`;
  await db.query(prepared(db, text, [lo, hi, fraction]));
}

/** The probe's session: a statement slower than this is cut off and counted as that slow. */
export async function setProbeTimeout(db: Queryable, ms: number): Promise<void> {
  await db.query(`SELECT set_config('statement_timeout', $1, false)`, [`${Math.round(ms)}ms`]);
}

/** A statement cut off by statement_timeout. */
export const isStatementTimeout = (err: unknown) => (err as { code?: string })?.code === '57014';

/**
 * An operator's probe (checked by the spec), its statements prepared once on
 * the probe's connection: one query, or a list run as one transaction from
 * BEGIN to COMMIT. A statement that fails rolls the transaction back.
 */
export async function probeStatement(db: Queryable, probe: string | readonly string[]): Promise<void> {
  if (typeof probe === 'string') {
    await db.query(prepared(db, probe, []));
    return;
  }
  await db.query('BEGIN');
  try {
    for (const text of probe) await db.query(prepared(db, text, []));
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

export interface ReplicationRow {
  name: string;
  state: string;
  replay_lsn: string | null;
  replay_lag_ms: number | null;
  current_lsn: string;
}

/**
 * Streaming replicas as the primary sees them, with the primary's WAL
 * position in the same snapshot. Needs pg_monitor (or superuser) to see the
 * LSN columns. No rows and no current position on a standby.
 */
export async function replication(db: Queryable): Promise<{ currentLsn: string | null; rows: ReplicationRow[] }> {
  const { rows } = await db.query<{ current_lsn: string | null; replicas: Omit<ReplicationRow, 'current_lsn'>[] }>(
    `SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
            (SELECT coalesce(json_agg(json_build_object(
                      'name', r.application_name || '@' || coalesce(host(r.client_addr), 'local'),
                      'state', r.state,
                      'replay_lsn', r.replay_lsn::text,
                      'replay_lag_ms', extract(epoch FROM r.replay_lag) * 1000)), '[]'::json)
               FROM pg_stat_replication r) AS replicas`,
  );
  const currentLsn = rows[0]?.current_lsn ?? null;
  return {
    currentLsn,
    rows: (rows[0]?.replicas ?? []).map((r) => ({
      ...r,
      replay_lag_ms: r.replay_lag_ms === null ? null : Number(r.replay_lag_ms),
      current_lsn: currentLsn ?? '',
    })),
  };
}

/**
 * The counters of every statement of this database in pg_stat_statements,
 * stagefill's own bookkeeping (which names its schema) and this reading left
 * out; undefined
 * when the extension is not installed here or not loaded
 * (shared_preload_libraries), or the user may not read it. Read at the start
 * and end of a window without the backfill, their differences give the
 * traffic's latency in it (core/backfill/traffic-latency.ts).
 */
export async function statementCounters(
  db: Queryable,
): Promise<{ id: string; calls: number; totalMs: number; sumSquaresMs: number }[] | undefined> {
  const { rows: found } = await db.query<{ at: string | null }>(
    `SELECT to_regclass(quote_ident(n.nspname) || '.pg_stat_statements')::text AS at
       FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'`,
  );
  const view = found[0]?.at;
  if (!view) return undefined;
  try {
    const { rows } = await db.query<{ id: string; calls: number; total_ms: number; sum_squares_ms: number }>(
      `SELECT queryid::text AS id, calls::float8 AS calls, total_exec_time::float8 AS total_ms,
              (calls * (stddev_exec_time ^ 2 + mean_exec_time ^ 2))::float8 AS sum_squares_ms
         FROM ${view}
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND queryid IS NOT NULL AND query NOT ILIKE '%' || $1 || '%' AND query NOT ILIKE '%pg_stat_statements%'`,
      [SCHEMA],
    );
    return rows.map((r) => ({ id: r.id, calls: r.calls, totalMs: r.total_ms, sumSquaresMs: r.sum_squares_ms }));
  } catch (err) {
    // 55000: "pg_stat_statements must be loaded via shared_preload_libraries"; 42501: no privilege
    const code = (err as { code?: string })?.code;
    if (code === '55000' || code === '42501') return undefined;
    throw err;
  }
}

/** Rows the backfill's current generation has written so far (the controller's observed rate). */
export async function rowsDone(db: Queryable, backfillId: number, generation: number): Promise<number> {
  const { rows } = await db.query<{ n: string | null }>(
    `SELECT sum(rows_done)::text AS n FROM ${own('backfill_partitions')} WHERE backfill_id = $1 AND generation = $2`,
    [backfillId, generation],
  );
  return Number(rows[0]?.n ?? 0);
}

export interface ControlRow {
  generation: number;
  baseline_p99_ms: number | null;
  state: unknown;
  replicas_seen: string[];
  age_ms: number;
}

/** The control row, and how old it is by the database's clock (so leases on other hosts agree). */
export async function readControl(db: Queryable, backfillId: number): Promise<ControlRow | undefined> {
  // unnamed: leases read it through the pool, whose connections `prepared` does not track
  const { rows } = await db.query<ControlRow>(
    `SELECT generation, baseline_p99_ms, state, replicas_seen,
            (extract(epoch FROM clock_timestamp() - updated_at) * 1000)::float8 AS age_ms
       FROM ${own('backfill_control')} WHERE backfill_id = $1`,
    [backfillId],
  );
  return rows[0];
}

export async function writeControl(
  db: Queryable,
  row: { backfillId: number; generation: number; baselineP99Ms: number | null; state: unknown; replicasSeen: string[] },
): Promise<void> {
  await db.query(
    `INSERT INTO ${own('backfill_control')} (backfill_id, generation, baseline_p99_ms, state, replicas_seen, updated_at)
     VALUES ($1, $2, $3, $4, $5, clock_timestamp())
     ON CONFLICT (backfill_id) DO UPDATE
        SET generation = excluded.generation, baseline_p99_ms = excluded.baseline_p99_ms, state = excluded.state,
            replicas_seen = excluded.replicas_seen, updated_at = excluded.updated_at`,
    [row.backfillId, row.generation, row.baselineP99Ms, JSON.stringify(row.state), row.replicasSeen],
  );
}

export async function readThrottleMemory(db: Queryable, table: string): Promise<RememberedSettings | undefined> {
  const { rows } = await db.query<{
    rows_per_second: number | null;
    lanes: number;
    chunk_size: number;
    budget_p99_ms: number;
    p99_ms: number;
    kept_at_ms: number;
  }>(
    `SELECT rows_per_second, lanes, chunk_size, budget_p99_ms, p99_ms, (extract(epoch FROM kept_at) * 1000)::float8 AS kept_at_ms
       FROM ${own('throttle_memory')} WHERE table_name = $1`,
    [table],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    rowsPerSecond: r.rows_per_second ?? undefined,
    lanes: r.lanes,
    chunkSize: r.chunk_size,
    budgetP99Ms: r.budget_p99_ms,
    p99Ms: r.p99_ms,
    keptAt: r.kept_at_ms,
  };
}

export async function rememberThrottle(db: Queryable, table: string, m: Omit<RememberedSettings, 'keptAt'>): Promise<void> {
  await db.query(
    `INSERT INTO ${own('throttle_memory')} (table_name, rows_per_second, lanes, chunk_size, budget_p99_ms, p99_ms, kept_at)
     VALUES ($1, $2, $3, $4, $5, $6, now())
     ON CONFLICT (table_name) DO UPDATE
        SET rows_per_second = excluded.rows_per_second, lanes = excluded.lanes, chunk_size = excluded.chunk_size,
            budget_p99_ms = excluded.budget_p99_ms, p99_ms = excluded.p99_ms, kept_at = excluded.kept_at`,
    [table, m.rowsPerSecond ?? null, m.lanes, m.chunkSize, m.budgetP99Ms, m.p99Ms],
  );
}
