import { escapeLiteral } from 'pg';
import type { Queryable } from '../../db/pool';
import { ident, qualified } from '../../db/identifiers';
import { parseTable } from '../../core/common/table-name';

/**
 * Index DDL shared by createIndex, dropIndex, addUnique and addForeignKey.
 * Everything CONCURRENTLY runs on a plain connection in autocommit (the step
 * runner's non-transactional phase), with the session's lock_timeout set.
 */

export interface IndexDef {
  /** schema.table */
  table: string;
  name: string;
  unique?: boolean;
  method?: string;
  columns?: string[];
  expressions?: string[];
  include?: string[];
  where?: string;
  with?: Record<string, number | boolean | string>;
}

function storageValue(v: number | boolean | string): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  return escapeLiteral(v);
}

export function createIndexStatement(d: IndexDef): string {
  const keys = [...(d.columns ?? []).map((c) => ident(c)), ...(d.expressions ?? []).map((e) => `(${e})`)].join(', ');
  let s = `CREATE ${d.unique ? 'UNIQUE ' : ''}INDEX CONCURRENTLY ${ident(d.name)} ON ${qualified(d.table)} USING ${ident(d.method ?? 'btree')} (${keys})`;
  if (d.include?.length) s += ` INCLUDE (${d.include.map((c) => ident(c)).join(', ')})`;
  if (d.with && Object.keys(d.with).length)
    s += ` WITH (${Object.entries(d.with)
      .map(([k, v]) => `${ident(k)} = ${storageValue(v)}`)
      .join(', ')})`;
  if (d.where) s += ` WHERE (${d.where})`;
  return s;
}

export interface RelationInfo {
  kind: string;
  /** The table an index is on, schema.table; null for anything else. */
  indexOn: string | null;
  isValid: boolean;
  /** The constraint the index backs (unique, primary key, exclusion), if any. */
  constraint: string | null;
  def: string | null;
}

/** Any relation named `name` in the table's schema (indexes share the namespace with tables). */
export async function relationInfo(db: Queryable, table: string, name: string): Promise<RelationInfo | undefined> {
  const { rows } = await db.query<RelationInfo>(
    `SELECT c.relkind::text AS kind, CASE WHEN i.indrelid IS NULL THEN NULL ELSE format('%s.%s', tn.nspname, t.relname) END AS "indexOn",
            coalesce(i.indisvalid, false) AS "isValid", k.conname AS constraint,
            CASE WHEN i.indexrelid IS NULL THEN NULL ELSE pg_get_indexdef(i.indexrelid) END AS def
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_index i ON i.indexrelid = c.oid
       LEFT JOIN pg_class t ON t.oid = i.indrelid
       LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
       LEFT JOIN pg_constraint k ON k.conindid = c.oid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')
      WHERE n.nspname = $1 AND c.relname = $2`,
    [parseTable(table).schema, name],
  );
  return rows[0];
}

/**
 * A backend whose client vanished (the worker SIGKILLed mid-build) stops at
 * its next check instead of building on unseen; its INVALID leftover is then
 * dropped by the retry.
 */
async function withClientCheck<T>(db: Queryable, fn: () => Promise<T>): Promise<T> {
  await db.query(`SELECT set_config('client_connection_check_interval', '1s', false)`);
  try {
    return await fn();
  } finally {
    await db.query('RESET client_connection_check_interval').catch(() => undefined);
  }
}

export async function dropIndexConcurrently(db: Queryable, table: string, name: string): Promise<void> {
  await withClientCheck(db, () => db.query(`DROP INDEX CONCURRENTLY IF EXISTS ${ident(parseTable(table).schema)}.${ident(name)}`));
}

/**
 * Builds the index unless a valid one of this name is there already (an
 * earlier attempt finished before its phase was recorded); an INVALID one (a
 * failed or interrupted build) is dropped first, so a retry never leaves two
 * indexes or a broken one. Returns whether it built.
 */
export async function buildIndexConcurrently(db: Queryable, d: IndexDef): Promise<{ isBuilt: boolean; droppedInvalid: boolean }> {
  const existing = await relationInfo(db, d.table, d.name);
  if (existing?.isValid) return { isBuilt: false, droppedInvalid: false };
  if (existing) await dropIndexConcurrently(db, d.table, d.name);
  await withClientCheck(db, () => db.query(createIndexStatement(d)));
  return { isBuilt: true, droppedInvalid: Boolean(existing) };
}

/** Columns of `table` among `names` that it does not have. */
export async function missingColumns(db: Queryable, table: string, names: string[]): Promise<string[]> {
  const t = parseTable(table);
  const { rows } = await db.query<{ name: string }>(
    `SELECT a.attname AS name FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped`,
    [t.schema, t.name],
  );
  const have = new Set(rows.map((r) => r.name));
  return names.filter((n) => !have.has(n));
}

export async function tableExists(db: Queryable, table: string): Promise<boolean> {
  const t = parseTable(table);
  const { rows } = await db.query(
    `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
    [t.schema, t.name],
  );
  return rows.length > 0;
}
