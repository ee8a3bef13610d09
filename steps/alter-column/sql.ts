import type { Queryable } from '../../db/pool';
import { qualified, ident } from '../../db/identifiers';

/**
 * alterColumn's own statements; the sync trigger is db/rollout/sync-triggers.ts, the
 * duplicated objects db/rollout/duplicate.ts.
 */

export async function addNewColumn(db: Queryable, table: string, column: string, type: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} ADD COLUMN ${ident(column)} ${type}`);
}

/** Plans `down` over a row shaped like the new version (each `source` column read as `as`), reading none: it must give the legacy column's type. */
export async function checkOverNewRow(
  db: Queryable,
  table: string,
  expr: string,
  type: string,
  row: { source: string; as: string }[],
): Promise<void> {
  const list = row.map((c) => `${ident(c.source)} AS ${ident(c.as)}`).join(', ');
  await db.query(`SELECT (${expr})::${type} FROM (SELECT ${list} FROM ${qualified(table)}) AS _r LIMIT 0`);
}
