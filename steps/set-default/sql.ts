import type { Queryable } from '../../db/pool';
import { ident, qualified } from '../../db/identifiers';
import { parseTable } from '../../core/common/table-name';

/** The column's default as Postgres prints it (valid SQL to set it again), null for none; undefined for no such column. */
export async function columnDefault(db: Queryable, table: string, column: string): Promise<string | null | undefined> {
  const t = parseTable(table);
  const { rows } = await db.query<{ def: string | null }>(
    `SELECT pg_get_expr(d.adbin, d.adrelid) AS def
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped`,
    [t.schema, t.name, column],
  );
  return rows[0]?.def; // undefined: no such column
}

/** Sets `expr` as the default, or drops the default for null. */
export async function setColumnDefault(db: Queryable, table: string, column: string, expr: string | null): Promise<void> {
  if (expr === null) await db.query(`ALTER TABLE ${qualified(table)} ALTER COLUMN ${ident(column)} DROP DEFAULT`);
  else await db.query(`ALTER TABLE ${qualified(table)} ALTER COLUMN ${ident(column)} SET DEFAULT ${expr}`);
}
