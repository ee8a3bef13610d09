import type { Queryable } from '../pool';
import { qualified } from '../identifiers';
import type { KeyColumn } from './key-values';
import { keyParams, decodeKey, canonicalKey } from './key-values';
import { keyExpr, keyOrder, keyText } from './key-sql';
import { onlyItem } from '../../core/common/checked';

/**
 * The partitions of a backfill's key range: cut from the data itself (ntile
 * over the key), on a large table from a block sample, with the planner's row
 * estimate deciding which. The key's description and ends are in db/backfill/keys.ts.
 */

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
  const only = onlyItem(cols);
  // a one-column key of the types backfills always took: min() per bucket; other types (uuid has no
  // min()) and row values: the first row of each bucket
  const ranked = (src: string, params: unknown[]) =>
    only && MIN_AGGREGATE_TYPES.has(only.type)
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
  for (const [i, b] of bounds.entries()) b.hi = bounds[i + 1]?.lo ?? b.hi; // each ends where the next starts; the last at `to`
  return bounds.length ? bounds : [{ lo: from, hi: to, rows: 0 }];
}

/** The planner's row estimate (pg_class.reltuples); -1 when the table was never analyzed. */
export async function estimatedRows(db: Queryable, table: string): Promise<number> {
  const { rows } = await db.query<{ n: number | null }>('SELECT reltuples::float8 AS n FROM pg_class WHERE oid = to_regclass($1)', [
    qualified(table),
  ]);
  return rows[0]?.n ?? -1;
}
