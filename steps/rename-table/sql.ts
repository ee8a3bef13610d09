import type { Queryable } from '../../db/pool';
import { qualified, ident } from '../../db/identifiers';
import { parseTable } from '../../core/common/table-name';

/** A relation (table, view, index, sequence, ...) of that name in the table's schema. */
export async function nameTaken(db: Queryable, table: string, name: string): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [parseTable(table).schema, name],
  );
  return rows.length > 0;
}

export async function renameTable(db: Queryable, table: string, to: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} RENAME TO ${ident(to)}`);
}
