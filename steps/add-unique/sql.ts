import type { Queryable } from '../../db/pool';
import { ident, qualified } from '../../db/identifiers';

export interface DuplicateSample {
  key: string;
  rows: number;
}

/**
 * Up to `limit` values of `columns` held by more than one row, most repeated
 * first. Rows with a NULL among them are left out: a unique constraint lets
 * those through.
 */
export async function duplicateSample(db: Queryable, table: string, columns: string[], limit = 5): Promise<DuplicateSample[]> {
  const cols = columns.map((c) => ident(c)).join(', ');
  const notNull = columns.map((c) => `${ident(c)} IS NOT NULL`).join(' AND ');
  const { rows } = await db.query<{ key: string; rows: string }>(
    `SELECT ROW(${cols})::text AS key, count(*) AS rows FROM ${qualified(table)} WHERE ${notNull} GROUP BY ${cols} HAVING count(*) > 1 ORDER BY count(*) DESC, 1 LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({ key: r.key, rows: Number(r.rows) }));
}

export async function attachUniqueIndex(db: Queryable, table: string, name: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} ADD CONSTRAINT ${ident(name)} UNIQUE USING INDEX ${ident(name)}`);
}

export async function dropConstraintIfExists(db: Queryable, table: string, name: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} DROP CONSTRAINT IF EXISTS ${ident(name)}`);
}
