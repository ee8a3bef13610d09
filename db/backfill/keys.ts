import type { Queryable } from '../pool';
import { qualified } from '../identifiers';
import type { KeyColumn } from './key-values';
import type { SuccessorKind } from './key-values';
import { keyParams, encodeKey, decodeKey, canonicalKey, successorKind, uuidAfter } from './key-values';
import type { KeyedTable } from './key-sql';
import { keyExpr, keyOrder, keyText, keyNotNull } from './key-sql';
import { parseTable } from '../../core/common/table-name';
import { itemAt, present } from '../../core/common/checked';
import { oneRow } from '../rows';

/**
 * The statements that find out about a backfill's key: what the key is
 * (types, index, uniqueness, a partitioned table's leaves), a typed key value
 * made canonical, its ends and the key just past them, and the probes between
 * leaves. Key values are the encoded text of core/backfill/keys.ts; the database
 * orders them (type and collation of the column), never this code. The SQL
 * fragments over the key are in db/backfill/key-sql.ts, partition bounds in
 * db/backfill/key-partitions.ts, the chunk path in db/backfill/key-chunks.ts.
 */

export interface KeyColumnInfo {
  name: string;
  /** Undefined: no such column. */
  type?: string;
  collation?: string;
  /** The type (or a domain's base type) has a default btree operator class: it can be ordered and range-compared. */
  hasBtree: boolean;
}

export interface KeyInfo {
  tableExists: boolean;
  isPartitioned: boolean;
  columns: KeyColumnInfo[];
  /** A btree index whose leading columns are the key's, in order: chunks are index range scans. */
  hasIndex: boolean;
  /** A unique, non-partial index on exactly the key's columns: a key range then holds at most one row per key value. */
  isUnique: boolean;
}

export async function describeKey(db: Queryable, table: string, names: readonly string[]): Promise<KeyInfo> {
  const t = parseTable(table);
  const rel = await db.query<{ oid: number; relkind: string }>(
    `SELECT c.oid, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
    [t.schema, t.name],
  );
  const relation = rel.rows[0];
  if (!relation)
    return {
      tableExists: false,
      isPartitioned: false,
      columns: names.map((name) => ({ name, hasBtree: false })),
      hasIndex: false,
      isUnique: false,
    };
  const { oid } = relation;
  const atts = await db.query<{ attname: string; attnum: number; type: string; collation: string | null; has_btree: boolean }>(
    `SELECT a.attname, a.attnum, format_type(a.atttypid, NULL) AS type,
            CASE WHEN a.attcollation NOT IN (0, 100) THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END AS collation,
            EXISTS (SELECT 1 FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod AND am.amname = 'btree'
                     WHERE oc.opcdefault
                       AND (oc.opcintype = bt.oid
                            OR EXISTS (SELECT 1 FROM pg_cast pc WHERE pc.castsource = bt.oid AND pc.casttarget = oc.opcintype AND pc.castmethod = 'b')
                            OR (oc.opcintype = 'anyenum'::regtype AND bt.typtype = 'e')
                            OR (oc.opcintype = 'anyarray'::regtype AND bt.typcategory = 'A'))) AS has_btree
       FROM pg_attribute a
       JOIN pg_type ty ON ty.oid = a.atttypid
       JOIN pg_type bt ON bt.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END
       LEFT JOIN pg_collation co ON co.oid = a.attcollation
       LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
      WHERE a.attrelid = $1 AND a.attname = ANY($2::text[]) AND NOT a.attisdropped AND a.attnum > 0`,
    [oid, names],
  );
  const byName = new Map(atts.rows.map((a) => [a.attname, a]));
  const columns = names.map((name) => {
    const a = byName.get(name);
    return a ? { name, type: a.type, collation: a.collation ?? undefined, hasBtree: a.has_btree } : { name, hasBtree: false };
  });
  const attnums = names.map((n) => byName.get(n)?.attnum);
  const idx = await db.query<{ indkey: string; indnkeyatts: number; indisunique: boolean; is_partial: boolean }>(
    `SELECT i.indkey::text AS indkey, i.indnkeyatts, i.indisunique, i.indpred IS NOT NULL AS is_partial
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
      WHERE i.indrelid = $1 AND am.amname = 'btree'`,
    [oid],
  );
  let hasIndex = false;
  let isUnique = false;
  if (attnums.every((n) => n !== undefined)) {
    for (const i of idx.rows) {
      const keys = i.indkey.split(' ').map(Number).slice(0, i.indnkeyatts);
      if (attnums.every((n, j) => keys[j] === n)) hasIndex = true;
      if (i.indisunique && !i.is_partial && keys.length === attnums.length && attnums.every((n) => keys.includes(n))) isUnique = true;
    }
  }
  return { tableExists: true, isPartitioned: relation.relkind === 'p', columns, hasIndex, isUnique };
}

/** A partitioned table's leaf partitions, schema-qualified, in a stable order; null for a plain table. */
export async function leafPartitions(db: Queryable, table: string): Promise<string[] | null> {
  const { rows } = await db.query<{ leaf: string | null; is_partitioned: boolean }>(
    `SELECT (SELECT c.relkind = 'p' FROM pg_class c WHERE c.oid = to_regclass($1)) AS is_partitioned, l.leaf
       FROM (SELECT NULL) one
       LEFT JOIN LATERAL (SELECT n.nspname || '.' || c.relname AS leaf
                            FROM pg_partition_tree(to_regclass($1)) t JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE t.isleaf) l ON true
      ORDER BY l.leaf`,
    [qualified(table)],
  );
  if (!rows[0]?.is_partitioned) return null;
  return rows.map((r) => r.leaf).filter((leaf) => leaf !== null);
}

/** A problem with the key that no retry fixes: the field and what to do. */
export class KeyError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** A key value someone typed (each column's text), as the database prints it for the key's types (so cursors compare as text). */
export async function normalizeKey(db: Queryable, cols: readonly KeyColumn[], parts: readonly string[], field = 'key'): Promise<string> {
  const input = parts.join(', ');
  const { rows } = await db
    .query<Record<string, string>>(`SELECT ${cols.map((c, i) => `($${i + 1}::${c.type})::text AS k${i}`).join(', ')}`, [...parts])
    .catch((err: Error) => {
      throw new KeyError(field, `"${input}" is not a value of the key's type (${cols.map((c) => c.type).join(', ')}): ${err.message}`);
    });
  const row = oneRow({ rows }, `the key value "${input}"`);
  return encodeKey(cols.map((_, i) => present(row[`k${i}`], `column ${i + 1} of the key value "${input}"`)));
}

/** The first and last key of `source` within [from, to) (either end open when absent), or null when none. Index scans both ways. */
export async function keyEnds(
  db: Queryable,
  source: string,
  cols: readonly KeyColumn[],
  range: { from?: string; to?: string } = {},
): Promise<{ first: string; last: string } | null> {
  const where = [keyNotNull(cols)];
  const params: string[] = [];
  if (range.from !== undefined) {
    where.push(`${keyExpr(cols)} >= ${keyParams(cols, params.length + 1)}`);
    params.push(...decodeKey(range.from, cols.length));
  }
  if (range.to !== undefined) {
    where.push(`${keyExpr(cols)} < ${keyParams(cols, params.length + 1)}`);
    params.push(...decodeKey(range.to, cols.length));
  }
  const end = (desc: boolean) =>
    db.query<{ k: string }>(
      `SELECT ${keyText(cols)} AS k FROM ${qualified(source)} WHERE ${where.join(' AND ')} ORDER BY ${keyOrder(cols, desc)} LIMIT 1`,
      params,
    );
  const [first] = (await end(false)).rows;
  if (!first) return null;
  const last = oneRow(await end(true), `the last key of ${source}`); // there is a first, so there is a last
  return { first: canonicalKey(first.k, cols.length), last: canonicalKey(last.k, cols.length) };
}

/**
 * A key value just past `last` (the open end of the last partition): the
 * last column moved on by the smallest step its type has (+1, +1 µs,
 * Infinity, the next uuid, the text followed by U+10FFFF), checked by the
 * database to sort after `last` under the column's collation. A type without
 * such a step is refused: give the spec a `range.to` instead.
 */
export async function afterKey(db: Queryable, cols: readonly KeyColumn[], last: string): Promise<string> {
  const parts = decodeKey(last, cols.length);
  const c = itemAt(cols, cols.length - 1, 'key column');
  const v = itemAt(parts, parts.length - 1, 'key part');
  const kind = successorKind(c.type);
  const refuse = (why: string) =>
    new KeyError(
      'range.to',
      `the key ${c.name} (${c.type}) ${why} past its largest value ${v}; give the spec a range.to past every row to backfill`,
    );
  let next: string | undefined;
  if (['smallint', 'integer', 'bigint'].includes(c.type)) {
    next = (BigInt(v) + 1n).toString(); // exact past 2^53, and no round trip on the common key
  } else if (kind === 'uuid') {
    next = uuidAfter(v);
    if (next === undefined) throw refuse('has no value');
  } else if (kind === 'none') {
    throw refuse('has no known next value');
  } else {
    const m = `$1::${c.type}${c.collation ? ` COLLATE ${c.collation}` : ''}`;
    const step: Record<Exclude<SuccessorKind, 'uuid' | 'none'>, string> = {
      'plus-one': `m + 1`,
      'plus-microsecond': `m + interval '1 microsecond'`,
      infinity: `'Infinity'::${c.type}`,
      text: `(m || chr(1114111))::${c.type}`,
      bytea: `m || '\\x00'::bytea`,
    };
    const { rows } = await db
      .query<{ s: string; ok: boolean }>(
        `SELECT s::text AS s, s > m AS ok FROM (SELECT ${step[kind]} AS s, m FROM (SELECT ${m} AS m) x) y`,
        [v],
      )
      .catch((err: Error) => {
        throw refuse(`has no value (${err.message})`);
      });
    const { ok, s } = oneRow({ rows }, `the value after ${v}`);
    if (!ok) throw refuse('has no value that sorts');
    next = s;
  }
  return encodeKey([...parts.slice(0, -1), next]);
}

/** The smallest key of the table above `after` (and below `below`), or null: where the next leaf of a partitioned table starts. */
export async function keyAbove(db: Queryable, t: KeyedTable, after: string, below?: string): Promise<string | null> {
  const n = t.cols.length;
  const params = decodeKey(after, n);
  let where = `${keyExpr(t.cols)} > ${keyParams(t.cols, 1)}`;
  if (below !== undefined) {
    where += ` AND ${keyExpr(t.cols)} < ${keyParams(t.cols, n + 1)}`;
    params.push(...decodeKey(below, n));
  }
  const { rows } = await db.query<{ k: string }>(
    `SELECT ${keyText(t.cols)} AS k FROM ${qualified(t.table)} WHERE ${where} ORDER BY ${keyOrder(t.cols)} LIMIT 1`,
    params,
  );
  const [above] = rows;
  return above ? canonicalKey(above.k, n) : null;
}

/**
 * Whether any of `tables` (the other leaves of a partitioned table) has a key
 * in [first, last]: then a key range of this leaf would span partitions. One
 * index probe per table.
 */
export async function rowsBetween(
  db: Queryable,
  cols: readonly KeyColumn[],
  tables: readonly string[],
  first: string,
  last: string,
): Promise<boolean> {
  if (!tables.length) return false;
  const n = cols.length;
  const k = keyExpr(cols);
  const probes = tables.map(
    (t) => `EXISTS (SELECT 1 FROM ${qualified(t)} WHERE ${k} >= ${keyParams(cols, 1)} AND ${k} <= ${keyParams(cols, n + 1)})`,
  );
  const { rows } = await db.query<{ any: boolean }>(`SELECT ${probes.join(' OR ')} AS any`, [
    ...decodeKey(first, n),
    ...decodeKey(last, n),
  ]);
  return oneRow({ rows }, 'the probe of the other leaves').any;
}
