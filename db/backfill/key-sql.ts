import { ident, qualified } from '../identifiers';
import type { KeyColumn } from './key-values';
import { itemAt, onlyItem } from '../../core/common/checked';

/**
 * The SQL fragments over a backfill's key (one column or a row value of
 * several): the key expression, its order, its stored text, the casts that
 * compare stored key text in stagefill's own tables, and the cut of a chunk.
 * Identifiers are quoted here; values are always parameters. The statements
 * that use them are in db/backfill/keys.ts (the key and its ends),
 * db/backfill/key-partitions.ts (partition bounds), db/backfill/key-chunks.ts (the chunk path)
 * and db/backfill/backfills.ts (checkpoints).
 */

/** The table and its key columns, as a lane or a planner needs them. */
export interface KeyedTable {
  table: string;
  cols: KeyColumn[];
}

export function keyExpr(cols: readonly KeyColumn[], alias = ''): string {
  const parts = cols.map((c) => `${alias}${ident(c.name)}`);
  return onlyItem(parts) ?? `(${parts.join(', ')})`;
}

export function keyOrder(cols: readonly KeyColumn[], desc = false): string {
  return cols.map((c) => `${ident(c.name)}${desc ? ' DESC' : ''}`).join(', ');
}

/** The key of a row as stored text: the value's text, or json_build_array of each column's text. */
export function keyText(cols: readonly KeyColumn[], alias = ''): string {
  const only = onlyItem(cols);
  if (only) return `${alias}${ident(only.name)}::text`;
  return `json_build_array(${cols.map((c) => `${alias}${ident(c.name)}::text`).join(', ')})::text`;
}

export function keyNotNull(cols: readonly KeyColumn[]): string {
  return cols.map((c) => `${ident(c.name)} IS NOT NULL`).join(' AND ');
}

/** A typed cast of stored key text in stagefill's own tables, with the column's collation, to compare two stored values. */
export function storedKey(cols: readonly KeyColumn[], column: string): string {
  const cast = (expr: string, c: KeyColumn) => `(${expr})::${c.type}${c.collation ? ` COLLATE ${c.collation}` : ''}`;
  const only = onlyItem(cols);
  if (only) return cast(column, only);
  return `ROW(${cols.map((c, i) => cast(`${column}::jsonb->>${i}`, c)).join(', ')})`;
}

/** The same for parameters $first..: ROW($3::t1 COLLATE c, $4::t2). */
export function storedParams(cols: readonly KeyColumn[], first: number): string {
  const cast = (n: number, c: KeyColumn) => `$${n}::${c.type}${c.collation ? ` COLLATE ${c.collation}` : ''}`;
  const only = onlyItem(cols);
  if (only) return cast(first, only);
  return `ROW(${cols.map((c, i) => cast(first + i, c)).join(', ')})`;
}

/**
 * The key `size` rows on from `from` (below `hi`), or null when fewer rows
 * are left; `from`, `hi` and `size` are parameter references ($n), one per
 * key column for the two keys.
 */
export function cutSql(t: KeyedTable, from: string[], hi: string[], size: string): string {
  const cast = (refs: string[]) => {
    const typed = t.cols.map((c, i) => `${itemAt(refs, i, 'key parameter')}::${c.type}`);
    return onlyItem(typed) ?? `ROW(${typed.join(', ')})`;
  };
  const k = keyExpr(t.cols);
  // the key's text is made of the one row kept, not of every row OFFSET skips (that halved a cut's time)
  return `(SELECT ${keyText(t.cols, 'c.')} FROM (SELECT ${keyOrder(t.cols)} FROM ${qualified(t.table)}
            WHERE ${k} >= ${cast(from)} AND ${k} < ${cast(hi)} ORDER BY ${keyOrder(t.cols)} OFFSET ${size} LIMIT 1) c)`;
}
