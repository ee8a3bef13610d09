import type { Queryable } from '../pool';
import { prepared } from '../pool';
import type { KeyColumn } from './key-values';
import { bindRange, rangeValues, canonicalKey } from './key-values';
import type { KeyedTable } from './key-sql';
import { cutSql } from './key-sql';
import { oneRow } from '../rows';

/**
 * The chunk path of a lane: where a chunk ends (its cut, `size` rows on) and
 * the transform or check run over its [lo, hi). Later cuts come back with
 * each checkpoint write (db/backfill/backfills.ts).
 */

const refs = (first: number, n: number) => Array.from({ length: n }, (_, i) => `$${first + i}`);

/** A lane's first cut; later ones come back with each checkpoint write. */
export async function cutChunk(db: Queryable, t: KeyedTable, from: string, partitionHi: string, size: number): Promise<string | null> {
  const n = t.cols.length;
  const { rows } = await db.query<{ cut: string | null }>(
    prepared(db, `SELECT ${cutSql(t, refs(1, n), refs(n + 1, n), `$${2 * n + 1}`)} AS cut`, [...rangeValues(from, partitionHi, n), size]),
  );
  const { cut } = oneRow({ rows }, 'the cut statement');
  return cut === null ? null : canonicalKey(cut, n);
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
