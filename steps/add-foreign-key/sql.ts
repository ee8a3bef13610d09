import type { Queryable } from '../../db/pool';
import { ident, qualified } from '../../db/identifiers';
import { parseTable } from '../../core/common/table-name';

export interface ForeignKeyDef {
  table: string;
  name: string;
  columns: string[];
  refTable: string;
  refColumns: string[];
  match: 'simple' | 'full';
  onDelete: string;
  onUpdate: string;
}

const ACTION_SQL: Record<string, string> = {
  'no action': 'NO ACTION',
  restrict: 'RESTRICT',
  cascade: 'CASCADE',
  'set null': 'SET NULL',
  'set default': 'SET DEFAULT',
};

/** NOT VALID: existing rows are not checked, so the ALTER holds its locks for an instant. */
export async function addForeignKeyNotValid(db: Queryable, d: ForeignKeyDef): Promise<void> {
  const cols = (cs: string[]) => cs.map((c) => ident(c)).join(', ');
  await db.query(
    `ALTER TABLE ${qualified(d.table)} ADD CONSTRAINT ${ident(d.name)} FOREIGN KEY (${cols(d.columns)}) REFERENCES ${qualified(d.refTable)} (${cols(d.refColumns)}) ` +
      `MATCH ${d.match === 'full' ? 'FULL' : 'SIMPLE'} ON DELETE ${ACTION_SQL[d.onDelete]} ON UPDATE ${ACTION_SQL[d.onUpdate]} NOT VALID`,
  );
}

/** The column numbers of `columns` in `table`, in that order (undefined for a missing one). */
async function attnums(db: Queryable, table: string, columns: string[]): Promise<(number | undefined)[]> {
  const t = parseTable(table);
  const { rows } = await db.query<{ name: string; num: number }>(
    `SELECT a.attname AS name, a.attnum AS num FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped`,
    [t.schema, t.name],
  );
  const by = new Map(rows.map((r) => [r.name, r.num]));
  return columns.map((c) => by.get(c));
}

/** A valid, non-partial unique index (or primary key) on exactly these columns, in any order: what a foreign key needs on its referenced side. */
export async function hasUniqueIndexOn(db: Queryable, table: string, columns: string[]): Promise<boolean> {
  const nums = await attnums(db, table, columns);
  if (nums.some((n) => n === undefined)) return false;
  const t = parseTable(table);
  // the key columns come first in indkey, INCLUDE columns after them
  const { rows } = await db.query<{ keys: number[] }>(
    `SELECT (string_to_array(i.indkey::text, ' ')::int[])[1:i.indnkeyatts] AS keys FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL`,
    [t.schema, t.name],
  );
  const want = [...(nums as number[])].sort((a, b) => a - b).join(',');
  return rows.some((r) => [...r.keys].sort((a, b) => a - b).join(',') === want);
}

/** A valid index whose leading key columns are `columns` (any order among them): deletes and updates on the referenced table can find the referencing rows. */
export async function hasIndexLeadingWith(db: Queryable, table: string, columns: string[]): Promise<boolean> {
  const nums = await attnums(db, table, columns);
  if (nums.some((n) => n === undefined)) return false;
  const t = parseTable(table);
  const { rows } = await db.query<{ keys: number[] }>(
    `SELECT string_to_array(i.indkey::text, ' ')::int[] AS keys FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
      WHERE n.nspname = $1 AND c.relname = $2 AND i.indisvalid AND i.indpred IS NULL AND am.amname = 'btree'`,
    [t.schema, t.name],
  );
  const want = [...(nums as number[])].sort((a, b) => a - b).join(',');
  return rows.some(
    (r) =>
      r.keys.length >= columns.length &&
      r.keys
        .slice(0, columns.length)
        .sort((a, b) => a - b)
        .join(',') === want,
  );
}
