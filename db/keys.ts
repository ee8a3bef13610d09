import { Queryable, prepared } from './pool';
import { parseTable, qualified, ident } from './identifiers';
import { KeyColumn, keyParams, bindRange, rangeValues, encodeKey, decodeKey, canonicalKey, successorKind, uuidAfter } from './key-values';

export type { KeyColumn } from './key-values';

/**
 * Every statement about a backfill's key: what the key is (types, index,
 * uniqueness, a partitioned table's leaves), its ends, the cuts of partitions
 * and chunks, and the statements run over a chunk's [lo, hi). Key values are
 * the encoded text of plan/keys.ts; the database orders them (type and
 * collation of the column), never this code.
 */

/** The table and its key columns, as a lane or a planner needs them. */
export interface KeyedTable {
  table: string;
  cols: KeyColumn[];
}

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
  if (!rel.rows.length)
    return {
      tableExists: false,
      isPartitioned: false,
      columns: names.map((name) => ({ name, hasBtree: false })),
      hasIndex: false,
      isUnique: false,
    };
  const oid = rel.rows[0].oid;
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
      if (i.indisunique && !i.is_partial && keys.length === attnums.length && attnums.every((n) => keys.includes(n!))) isUnique = true;
    }
  }
  return { tableExists: true, isPartitioned: rel.rows[0].relkind === 'p', columns, hasIndex, isUnique };
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
  if (!rows.length || !rows[0].is_partitioned) return null;
  return rows.filter((r) => r.leaf !== null).map((r) => r.leaf!);
}

// ---- SQL fragments over the key (identifiers quoted, values always parameters) ----

function keyExpr(cols: readonly KeyColumn[], alias = ''): string {
  const parts = cols.map((c) => `${alias}${ident(c.name)}`);
  return parts.length === 1 ? parts[0] : `(${parts.join(', ')})`;
}

function keyOrder(cols: readonly KeyColumn[], desc = false): string {
  return cols.map((c) => `${ident(c.name)}${desc ? ' DESC' : ''}`).join(', ');
}

/** The key of a row as stored text: the value's text, or json_build_array of each column's text. */
function keyText(cols: readonly KeyColumn[], alias = ''): string {
  if (cols.length === 1) return `${alias}${ident(cols[0].name)}::text`;
  return `json_build_array(${cols.map((c) => `${alias}${ident(c.name)}::text`).join(', ')})::text`;
}

function keyNotNull(cols: readonly KeyColumn[]): string {
  return cols.map((c) => `${ident(c.name)} IS NOT NULL`).join(' AND ');
}

/** A typed cast of stored key text in stagefill's own tables, with the column's collation, to compare two stored values. */
export function storedKey(cols: readonly KeyColumn[], column: string): string {
  const cast = (expr: string, c: KeyColumn) => `(${expr})::${c.type}${c.collation ? ` COLLATE ${c.collation}` : ''}`;
  if (cols.length === 1) return cast(column, cols[0]);
  return `ROW(${cols.map((c, i) => cast(`${column}::jsonb->>${i}`, c)).join(', ')})`;
}

/** The same for parameters $first..: ROW($3::t1 COLLATE c, $4::t2). */
export function storedParams(cols: readonly KeyColumn[], first: number): string {
  const cast = (n: number, c: KeyColumn) => `$${n}::${c.type}${c.collation ? ` COLLATE ${c.collation}` : ''}`;
  if (cols.length === 1) return cast(first, cols[0]);
  return `ROW(${cols.map((c, i) => cast(first + i, c)).join(', ')})`;
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
  return encodeKey(cols.map((_, i) => rows[0][`k${i}`]));
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
  const first = await end(false);
  if (!first.rows.length) return null;
  const last = await end(true);
  return { first: canonicalKey(first.rows[0].k, cols.length), last: canonicalKey(last.rows[0].k, cols.length) };
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
  const c = cols[cols.length - 1];
  const v = parts[parts.length - 1];
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
    const step: Record<string, string> = {
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
    if (!rows[0].ok) throw refuse('has no value that sorts');
    next = rows[0].s;
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
  return rows.length ? canonicalKey(rows[0].k, n) : null;
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
  return rows[0].any;
}

export interface PartitionBound {
  lo: string;
  hi: string;
  rows: number;
  /** The leaf partition of a partitioned table the range lies in. */
  leaf?: string | null;
}

const MIN_AGGREGATE_TYPES = new Set(['smallint', 'integer', 'bigint', 'date', 'timestamp without time zone', 'timestamp with time zone']);

/** Above this many rows (the planner's estimate) partitions are cut from a sample rather than a scan of every key. */
const SAMPLE_ABOVE_ROWS = 500_000;
/**
 * About this many sampled keys. The sample takes whole blocks, so a
 * partition's share is off by about 1/sqrt(its sampled blocks): 150k keys keep
 * 8 partitions of a 5M-row table within ~5% of each other, and the lane that
 * finishes first waits for the other by about that much.
 */
const SAMPLE_TARGET_ROWS = 150_000;

/**
 * Cuts [from, to) of `source` into `parts` ranges of about equal row counts,
 * from the data itself (ntile over the key) so sparse or skewed keys still
 * split evenly. On a large table the keys come from a block sample
 * (TABLESAMPLE SYSTEM): ranking every key of 5M rows took ~2 s, a tenth of the
 * whole backfill, and the row counts then are estimates (they feed progress
 * and ETA, not correctness).
 */
export async function partitionBounds(
  db: Queryable,
  source: string,
  cols: readonly KeyColumn[],
  from: string,
  to: string,
  parts: number,
): Promise<PartitionBound[]> {
  const n = cols.length;
  const k = keyExpr(cols);
  const range = `${k} >= ${keyParams(cols, 1)} AND ${k} < ${keyParams(cols, n + 1)}`;
  const ntile = `$${2 * n + 1}`;
  // a one-column key of the types backfills always took: min() per bucket; other types (uuid has no
  // min()) and row values: the first row of each bucket
  const ranked = (src: string, params: unknown[]) =>
    n === 1 && MIN_AGGREGATE_TYPES.has(cols[0].type)
      ? db.query<{ lo: string; rows: string }>(
          `SELECT min(k)::text AS lo, count(*) AS rows
             FROM (SELECT ${k} AS k, ntile(${ntile}) OVER (ORDER BY ${k}) AS b FROM ${src} WHERE ${range}) s
            GROUP BY b ORDER BY b`,
          params,
        )
      : db.query<{ lo: string; rows: string }>(
          `SELECT DISTINCT ON (b) kt AS lo, count(*) OVER (PARTITION BY b) AS rows
             FROM (SELECT ${keyText(cols)} AS kt, ${keyOrder(cols)}, ntile(${ntile}) OVER (ORDER BY ${keyOrder(cols)}) AS b FROM ${src} WHERE ${range}) s
            ORDER BY b, ${keyOrder(cols)}`,
          params,
        );
  const base = [...decodeKey(from, n), ...decodeKey(to, n), parts];
  let rows: { lo: string; rows: number }[] | undefined;
  const estimate = await estimatedRows(db, source);
  if (estimate >= SAMPLE_ABOVE_ROWS) {
    const percent = Math.min(100, (100 * SAMPLE_TARGET_ROWS) / estimate);
    const sample = await ranked(`${qualified(source)} TABLESAMPLE SYSTEM ($${2 * n + 2})`, [...base, percent]);
    const sampled = sample.rows.reduce((s, r) => s + Number(r.rows), 0);
    // a narrow range of a big table leaves too few sampled keys to cut from: rank its keys instead
    if (sampled >= parts * 100) rows = sample.rows.map((r) => ({ lo: r.lo, rows: Math.round((Number(r.rows) * 100) / percent) }));
  }
  rows ??= (await ranked(qualified(source), base)).rows.map((r) => ({ lo: r.lo, rows: Number(r.rows) }));
  const bounds: PartitionBound[] = [];
  for (const [i, r] of rows.entries()) {
    const lo = i === 0 ? from : canonicalKey(r.lo, n);
    const last = bounds[bounds.length - 1];
    // equal keys can straddle two buckets; keep boundaries strictly increasing
    if (last && last.lo === lo) last.rows += r.rows;
    else bounds.push({ lo, hi: to, rows: r.rows });
  }
  for (let i = 0; i + 1 < bounds.length; i++) bounds[i].hi = bounds[i + 1].lo;
  return bounds.length ? bounds : [{ lo: from, hi: to, rows: 0 }];
}

/** The planner's row estimate (pg_class.reltuples); -1 when the table was never analyzed. */
export async function estimatedRows(db: Queryable, table: string): Promise<number> {
  const { rows } = await db.query<{ n: number | null }>('SELECT reltuples::float8 AS n FROM pg_class WHERE oid = to_regclass($1)', [
    qualified(table),
  ]);
  return rows[0]?.n ?? -1;
}

// ---- the chunk path ----

/**
 * The key `size` rows on from `from` (below `hi`), or null when fewer rows
 * are left; `from`, `hi` and `size` are parameter references ($n), one per
 * key column for the two keys.
 */
export function cutSql(t: KeyedTable, from: string[], hi: string[], size: string): string {
  const cast = (refs: string[]) =>
    t.cols.length === 1 ? `${refs[0]}::${t.cols[0].type}` : `ROW(${refs.map((r, i) => `${r}::${t.cols[i].type}`).join(', ')})`;
  const k = keyExpr(t.cols);
  // the key's text is made of the one row kept, not of every row OFFSET skips (that halved a cut's time)
  return `(SELECT ${keyText(t.cols, 'c.')} FROM (SELECT ${keyOrder(t.cols)} FROM ${qualified(t.table)}
            WHERE ${k} >= ${cast(from)} AND ${k} < ${cast(hi)} ORDER BY ${keyOrder(t.cols)} OFFSET ${size} LIMIT 1) c)`;
}

const refs = (first: number, n: number) => Array.from({ length: n }, (_, i) => `$${first + i}`);

/** A lane's first cut; later ones come back with each checkpoint write. */
export async function cutChunk(db: Queryable, t: KeyedTable, from: string, partitionHi: string, size: number): Promise<string | null> {
  const n = t.cols.length;
  const { rows } = await db.query<{ cut: string | null }>(
    prepared(db, `SELECT ${cutSql(t, refs(1, n), refs(n + 1, n), `$${2 * n + 1}`)} AS cut`, [...rangeValues(from, partitionHi, n), size]),
  );
  return rows[0].cut === null ? null : canonicalKey(rows[0].cut, n);
}

/** More than a chunk's rows share one key value: no [lo, hi) of this key holds at most chunkSize rows. */
export class KeyRunTooLong extends Error {
  constructor(
    readonly lo: string,
    readonly size: number,
  ) {
    super(`more than ${size} rows share the key value ${lo}`);
  }
}

/**
 * Where the chunk starting at `lo` ends, from its cut (the key `size` rows
 * on, or null when fewer are left): never past the partition's end. A cut
 * equal to `lo` means more than `size` rows share that key value; the chunk
 * would hold them all, so it is refused (KeyRunTooLong) rather than run over
 * its size: a key that is not unique must not repeat one value more than a
 * chunk's rows (key by more columns, e.g. [tenant_id, id], or raise chunkSize).
 */
export function chunkEnd(lo: string, partitionHi: string, cut: string | null, size: number): string {
  const hi = cut ?? partitionHi;
  if (hi === lo) throw new KeyRunTooLong(lo, size);
  return hi;
}

/** A chunk's transform or check over [lo, hi), prepared once per connection. */
export async function runRangeStatement(
  db: Queryable,
  sql: string,
  cols: readonly KeyColumn[],
  lo: string,
  hi: string,
): Promise<{ rowCount: number; value?: unknown }> {
  const r = await db.query(prepared(db, bindRange(sql, cols), rangeValues(lo, hi, cols.length)));
  const first = r.rows?.[0] as Record<string, unknown> | undefined;
  return { rowCount: r.rowCount ?? 0, value: first ? Object.values(first)[0] : undefined };
}
