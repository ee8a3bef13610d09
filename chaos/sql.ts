import type { Pool, PoolClient } from 'pg';
import { present } from '../core/common/checked';
import { ident, qualified } from '../db/identifiers';

/**
 * Every statement the campaign runs: its tables, its live writers, and what the checker reads. Identifiers through
 * ident()/qualified(), values as parameters, as in db/.
 */

export type KeyKind = 'int' | 'uuid' | 'composite';
/** One row's key as the live writer addresses it. */
export type RowKey = string | [number, string];

const KEY_COLUMNS: Record<KeyKind, string> = {
  int: 'id bigint PRIMARY KEY',
  uuid: 'id uuid PRIMARY KEY DEFAULT gen_random_uuid()',
  composite: 'tenant_id int NOT NULL, id bigint NOT NULL, PRIMARY KEY (tenant_id, id)',
};

/**
 * Makes a run's tables in one transaction, dropping them first: a setup the campaign tries again after a fault (its
 * commit may have landed with the answer lost: PostgreSQL SIGKILLed at that moment) starts over instead of finding a
 * table already there, half filled or empty.
 */
async function setUp(pool: Pool, tables: readonly string[], make: (db: PoolClient) => Promise<void>): Promise<void> {
  const db = await pool.connect();
  let failed: Error | undefined;
  try {
    await db.query('BEGIN');
    for (const t of tables) await db.query(`DROP TABLE IF EXISTS ${qualified(t)}`);
    await make(db);
    await db.query('COMMIT');
  } catch (err) {
    failed = err as Error;
    await db.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    // a connection the fault broke is not pooled again
    db.release(failed);
  }
}

/** A backfill's table: its key, `n` (the counter the backfill raises by one) and `v` (the live writer's counter). */
export async function createCounterTable(pool: Pool, table: string, key: KeyKind, rows: number): Promise<void> {
  await setUp(pool, [table], async (db) => {
    const t = qualified(table);
    await db.query(`CREATE TABLE ${t} (${KEY_COLUMNS[key]}, n int NOT NULL DEFAULT 0, v int NOT NULL DEFAULT 0)`);
    const fill: Record<KeyKind, string> = {
      int: `INSERT INTO ${t} (id) SELECT g FROM generate_series(1, $1::int) g`,
      uuid: `INSERT INTO ${t} (n) SELECT 0 FROM generate_series(1, $1::int)`,
      composite: `INSERT INTO ${t} (tenant_id, id) SELECT 1 + g % 5, g FROM generate_series(1, $1::int) g`,
    };
    await db.query(fill[key], [rows]);
    await db.query(`ANALYZE ${t}`);
  });
}

/** The backfill's transform: n = n + 1 over one chunk, so a chunk applied twice shows as n = 2. */
export function counterTransform(table: string, key: KeyKind): string {
  const t = qualified(table);
  return key === 'composite'
    ? `UPDATE ${t} SET n = n + 1 WHERE (tenant_id, id) >= :lo AND (tenant_id, id) < :hi`
    : `UPDATE ${t} SET n = n + 1 WHERE id >= :lo AND id < :hi`;
}

/** `count` keys of the table, for the live writer to update. */
export async function sampleKeys(pool: Pool, table: string, key: KeyKind, count: number): Promise<RowKey[]> {
  const t = qualified(table);
  if (key === 'composite') {
    const { rows } = await pool.query(`SELECT tenant_id, id::text FROM ${t} ORDER BY random() LIMIT $1`, [count]);
    return rows.map((r: { tenant_id: number; id: string }) => [r.tenant_id, r.id]);
  }
  const { rows } = await pool.query(`SELECT id::text FROM ${t} ORDER BY random() LIMIT $1`, [count]);
  return rows.map((r: { id: string }) => r.id);
}

/** One live write: the row's `v` up by one (a counter, so the checker can tell a lost write from a doubled one). */
export async function bumpLive(pool: Pool, table: string, key: KeyKind, row: RowKey): Promise<void> {
  const t = qualified(table);
  if (key === 'composite') {
    const [tenant, id] = row as [number, string];
    await pool.query(`UPDATE ${t} SET v = v + 1 WHERE (tenant_id, id) = ($1, $2::bigint)`, [tenant, id]);
  } else {
    await pool.query(`UPDATE ${t} SET v = v + 1 WHERE id = $1::${key === 'uuid' ? 'uuid' : 'bigint'}`, [row as string]);
  }
}

export interface CounterCounts {
  rows: number;
  once: number;
  never: number;
  more: number;
  liveSum: number;
}

export async function counterCounts(pool: Pool, table: string): Promise<CounterCounts> {
  const { rows } = await pool.query(
    `SELECT count(*)::int AS rows, count(*) FILTER (WHERE n = 1)::int AS once, count(*) FILTER (WHERE n = 0)::int AS never,
            count(*) FILTER (WHERE n > 1)::int AS more, coalesce(sum(v), 0)::int AS "liveSum" FROM ${qualified(table)}`,
  );
  return rows[0] as CounterCounts;
}

/**
 * A rollout's pair: `parent (id)` with `parents` rows, and `child` with `rows` orders whose qty (1..7) the
 * alterColumn makes bigint and ten times larger, customer_id the foreign key to the parent, and `hits` the live
 * writer's counter.
 */
export async function createRolloutTables(pool: Pool, parent: string, child: string, rows: number, parents: number): Promise<void> {
  await setUp(pool, [child, parent], async (db) => {
    await db.query(`CREATE TABLE ${qualified(parent)} (id int PRIMARY KEY, label text NOT NULL)`);
    await db.query(`INSERT INTO ${qualified(parent)} SELECT g, 'p' || g FROM generate_series(1, $1::int) g`, [parents]);
    const c = qualified(child);
    await db.query(
      `CREATE TABLE ${c} (id bigint PRIMARY KEY, customer_id int NOT NULL, qty int NOT NULL, note text NOT NULL, hits int NOT NULL DEFAULT 0)`,
    );
    await db.query(`INSERT INTO ${c} SELECT g, 1 + g % $2::int, 1 + g % 7, 'order ' || g, 0 FROM generate_series(1, $1::int) g`, [
      rows,
      parents,
    ]);
    await db.query(`ANALYZE ${c}`);
  });
}

/** A live insert through the table's old shape: qty 0, which stays 0 under the alterColumn's `up`, either side of the swap. */
export async function insertLiveOrder(pool: Pool, child: string, id: number, customer: number): Promise<void> {
  await pool.query(`INSERT INTO ${qualified(child)} (id, customer_id, qty, note) VALUES ($1, $2, 0, 'live')`, [id, customer]);
}

export async function hitOrder(pool: Pool, child: string, id: number): Promise<void> {
  await pool.query(`UPDATE ${qualified(child)} SET hits = hits + 1 WHERE id = $1`, [id]);
}

/**
 * The original rows' legacy data as one checksum, with qty times `qtyFactor`: 1 is the data as it was, 10 what the
 * alterColumn's `up` makes of it.
 */
export async function orderChecksum(pool: Pool, child: string, rows: number, qtyFactor: number): Promise<string> {
  const { rows: r } = await pool.query<{ sum: string }>(
    `SELECT md5(string_agg(concat_ws(':', id, customer_id, qty::bigint * $2::int, note), ',' ORDER BY id)) AS sum
       FROM ${qualified(child)} WHERE id <= $1`,
    [rows, qtyFactor],
  );
  return present(r[0], 'the checksum row').sum;
}

export interface LiveOrders {
  /** Rows the live writer inserted, by id. */
  inserted: number;
  /** Of those, rows whose qty is not 0 (a trigger that dropped or mangled the live write). */
  insertedWrong: number;
  hits: number;
  /** Rows with qty NULL. */
  qtyNull: number;
}

export async function liveOrders(pool: Pool, child: string, rows: number): Promise<LiveOrders> {
  const { rows: r } = await pool.query(
    `SELECT count(*) FILTER (WHERE id > $1)::int AS inserted, count(*) FILTER (WHERE id > $1 AND qty IS DISTINCT FROM 0)::int AS "insertedWrong",
            coalesce(sum(hits), 0)::int AS hits, count(*) FILTER (WHERE qty IS NULL)::int AS "qtyNull" FROM ${qualified(child)}`,
    [rows],
  );
  return r[0] as LiveOrders;
}

/**
 * The table's schema as the catalog has it — columns, defaults, constraints,
 * indexes (and their validity), comments, triggers and dependent views — written independently of stagefill's
 * own snapshot code, so the campaign's checker and the integration tests do not trust what they test.
 */
export async function catalogOf(pool: Pool, table: string): Promise<Record<string, unknown[]>> {
  const [schema, name] = table.split('.');
  const q = async (sql: string) => (await pool.query<Record<string, unknown>>(sql, [schema, name])).rows;
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

/** Audited operator signals (approve, rollback) per workflow, from stagefill's own audit table. */
export async function auditedSignals(pool: Pool, workflowId: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM stagefill.events WHERE workflow_id = $1 AND event IN ('approved', 'rollback_requested')`,
    [workflowId],
  );
  return present(rows[0], 'the count row').n;
}

/**
 * What stagefill may not leave behind on the campaign's tables (named `<prefix>...` in public): triggers, version
 * schemas, INVALID indexes, columns or constraints with stagefill's temporary names, and table locks of finished rollouts.
 */
export async function leftovers(pool: Pool, prefix: string): Promise<string[]> {
  const { rows } = await pool.query(
    `WITH mine AS (SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'public' AND c.relkind = 'r' AND starts_with(c.relname, $1))
     SELECT 'trigger ' || t.tgname || ' on ' || m.relname AS what FROM pg_trigger t JOIN mine m ON m.oid = t.tgrelid WHERE NOT t.tgisinternal
     UNION ALL SELECT 'INVALID index ' || c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid IN (SELECT oid FROM mine) AND NOT i.indisvalid
     UNION ALL SELECT 'index ' || c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid IN (SELECT oid FROM mine) AND c.relname ~ '(_sfdup_|_sfnn_|stagefill)'
     UNION ALL SELECT 'column ' || m.relname || '.' || a.attname FROM pg_attribute a JOIN mine m ON m.oid = a.attrelid WHERE a.attname ~ '(stagefill|_sfdup_)' AND NOT a.attisdropped
     UNION ALL SELECT 'constraint ' || k.conname FROM pg_constraint k WHERE k.conrelid IN (SELECT oid FROM mine) AND k.conname ~ '(_sfdup_|_sfnn_|stagefill)'
     UNION ALL SELECT 'version schema ' || nspname FROM pg_namespace WHERE starts_with(nspname, 'public_' || $1)
     UNION ALL SELECT 'table lock ' || table_name || ' held by ' || workflow_id FROM stagefill.table_locks WHERE table_name LIKE 'public.' || $1 || '%'
     ORDER BY 1`,
    [prefix],
  );
  return rows.map((r: { what: string }) => r.what);
}

/** Ends every session of stagefill's workers (application_name stagefill-worker, and stagefill-fleet:<target> in the tenant databases); returns how many. */
export async function terminateWorkerSessions(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
      WHERE (application_name = 'stagefill-worker' OR starts_with(application_name, 'stagefill-fleet:')) AND pid <> pg_backend_pid()`,
  );
  return present(rows[0], 'the count row').n;
}

/** A number that grows whenever stagefill makes progress anywhere: committed chunks and audit rows. */
export async function progressMark(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ mark: string }>(
    `SELECT (SELECT count(*) FROM stagefill.checkpoints) + (SELECT count(*) FROM stagefill.events) AS mark`,
  );
  return Number(present(rows[0], 'the progress row').mark);
}

/** A graph's pair: `accounts (id, label, hits)` with `accounts` rows, and `ledger (id, account_id, amount, hits)` with `rows`. */
export async function createGraphTables(pool: Pool, accounts: string, ledger: string, accountRows: number, rows: number): Promise<void> {
  await setUp(pool, [ledger, accounts], async (db) => {
    const a = qualified(accounts);
    const l = qualified(ledger);
    await db.query(`CREATE TABLE ${a} (id bigint PRIMARY KEY, label text NOT NULL, hits int NOT NULL DEFAULT 0)`);
    await db.query(`INSERT INTO ${a} (id, label) SELECT g, 'a' || g FROM generate_series(1, $1::int) g`, [accountRows]);
    await db.query(
      `CREATE TABLE ${l} (id bigint PRIMARY KEY, account_id bigint NOT NULL, amount int NOT NULL, hits int NOT NULL DEFAULT 0)`,
    );
    await db.query(`INSERT INTO ${l} (id, account_id, amount) SELECT g, 1 + g % $2::int, g % 97 FROM generate_series(1, $1::int) g`, [
      rows,
      accountRows,
    ]);
    await db.query(`ANALYZE ${a}`);
    await db.query(`ANALYZE ${l}`);
  });
}

/** The rows with id <= `maxId` over `columns` (the table's own, never a run's counters) as one checksum. */
export async function rowsChecksum(pool: Pool, table: string, columns: readonly string[], maxId: number): Promise<string> {
  const cols = columns.map((c) => ident(c)).join(', ');
  const { rows } = await pool.query<{ sum: string }>(
    `SELECT md5(coalesce(string_agg(concat_ws(':', ${cols}), ',' ORDER BY id), '')) AS sum FROM ${qualified(table)} WHERE id <= $1`,
    [maxId],
  );
  return present(rows[0], 'the checksum row').sum;
}

/** A live update of any campaign table with a `hits` counter. */
export async function hitRow(pool: Pool, table: string, id: number): Promise<void> {
  await pool.query(`UPDATE ${qualified(table)} SET hits = hits + 1 WHERE id = $1`, [id]);
}

export async function insertLedger(pool: Pool, ledger: string, id: number, account: number): Promise<void> {
  await pool.query(`INSERT INTO ${qualified(ledger)} (id, account_id, amount) VALUES ($1, $2, 0)`, [id, account]);
}

export interface GraphCounts {
  /** Original accounts whose ref is not id + 1000000 (what the graph's backfill on accounts makes). */
  accountsWrong: number;
  /** Original ledger rows whose account_ref is not account_id + 1000000. */
  ledgerWrong: number;
  /** Live-inserted ledger rows with an account_ref that is neither NULL (inserted after contract) nor right. */
  insertedWrong: number;
  inserted: number;
  ledgerHits: number;
  accountsHits: number;
}

/** What the graph left; `expanded`: its columns exist (completed), else only the counters are read. */
export async function graphCounts(
  pool: Pool,
  accounts: string,
  ledger: string,
  accountRows: number,
  rows: number,
  expanded: boolean,
): Promise<GraphCounts> {
  const a = qualified(accounts);
  const l = qualified(ledger);
  const { rows: ra } = await pool.query(
    `SELECT ${expanded ? 'count(*) FILTER (WHERE id <= $1 AND ref IS DISTINCT FROM id + 1000000)' : '0'}::int AS "accountsWrong",
            coalesce(sum(hits), 0)::int AS "accountsHits" FROM ${a}`,
    expanded ? [accountRows] : [],
  );
  const { rows: rl } = await pool.query(
    `SELECT ${expanded ? 'count(*) FILTER (WHERE id <= $1 AND account_ref IS DISTINCT FROM account_id + 1000000)' : '0'}::int AS "ledgerWrong",
            ${expanded ? 'count(*) FILTER (WHERE id > $1 AND account_ref IS NOT NULL AND account_ref <> account_id + 1000000)' : '0'}::int AS "insertedWrong",
            count(*) FILTER (WHERE id > $1)::int AS inserted, coalesce(sum(hits), 0)::int AS "ledgerHits" FROM ${l}`,
    [rows],
  );
  return {
    ...(ra[0] as Pick<GraphCounts, 'accountsWrong' | 'accountsHits'>),
    ...(rl[0] as Omit<GraphCounts, 'accountsWrong' | 'accountsHits'>),
  };
}

/** A fleet target's table: `id`, `v` (what the change reads), `n` (its backfill step's counter), `hits` (the live writer's). */
export async function createFleetTable(pool: Pool, table: string, rows: number): Promise<void> {
  await setUp(pool, [table], async (db) => {
    const t = qualified(table);
    await db.query(`CREATE TABLE ${t} (id bigint PRIMARY KEY, v int NOT NULL, n int NOT NULL DEFAULT 0, hits int NOT NULL DEFAULT 0)`);
    await db.query(`INSERT INTO ${t} (id, v) SELECT g, g % 1000 FROM generate_series(1, $1::int) g`, [rows]);
    await db.query(`ANALYZE ${t}`);
  });
}

/** A row the fleet's gate refuses (v < 0): the target that has it fails and rolls itself back. */
export async function spoilFleetRow(pool: Pool, table: string): Promise<void> {
  await pool.query(`UPDATE ${qualified(table)} SET v = -1 WHERE id = 7`);
}

export interface FleetCounts {
  rows: number;
  /** Rows whose counter n is 0, 1, more. */
  never: number;
  once: number;
  more: number;
  /** Rows whose w is not v * 2 (when `expanded`: the change's column exists). */
  wWrong: number;
  hits: number;
}

export async function fleetCounts(pool: Pool, table: string, expanded: boolean): Promise<FleetCounts> {
  const { rows } = await pool.query(
    `SELECT count(*)::int AS rows, count(*) FILTER (WHERE n = 0)::int AS never, count(*) FILTER (WHERE n = 1)::int AS once,
            count(*) FILTER (WHERE n > 1)::int AS more, ${expanded ? 'count(*) FILTER (WHERE w IS DISTINCT FROM v * 2)' : '0'}::int AS "wWrong",
            coalesce(sum(hits), 0)::int AS hits FROM ${qualified(table)}`,
  );
  return rows[0] as FleetCounts;
}

/** The campaign's tenant databases (a fleet's targets), made on the campaign's PostgreSQL. */
export async function createDatabase(pool: Pool, name: string): Promise<void> {
  await pool.query(`CREATE DATABASE ${ident(name)}`);
}
