import type { Queryable } from '../../db/pool';
import { qualified, ident } from '../../db/identifiers';
import type { CreateTableStep } from './schema';
import { parseTable } from '../../core/common/table-name';
import { oneRow } from '../../db/rows';

/** createTable's statements: the table with its keys and constraints, its indexes, and what its revert looks at. */

const list = (cols: string[]) => cols.map(ident).join(', ');
const named = (name: string | undefined) => (name ? `CONSTRAINT ${ident(name)} ` : '');

/** The CREATE TABLE and CREATE INDEX statements, in order. Expressions (defaults, checks) are the spec's SQL, as written. */
export function createTableStatements(table: string, step: CreateTableStep): string[] {
  const lines = step.columns.map((c) => {
    const ref = c.references
      ? ` REFERENCES ${qualified(c.references.table)} (${ident(c.references.column)})${c.references.onDelete ? ` ON DELETE ${c.references.onDelete}` : ''}${c.references.onUpdate ? ` ON UPDATE ${c.references.onUpdate}` : ''}`
      : '';
    return `${ident(c.name)} ${c.type}${c.notNull ? ' NOT NULL' : ''}${c.default !== undefined ? ` DEFAULT (${c.default})` : ''}${ref}`;
  });
  if (step.primaryKey) lines.push(`PRIMARY KEY (${list(step.primaryKey)})`);
  for (const u of step.unique ?? []) lines.push(`${named(u.name)}UNIQUE (${list(u.columns)})`);
  for (const k of step.checks ?? []) lines.push(`${named(k.name)}CHECK (${k.expression})`);
  const statements = [`CREATE TABLE ${qualified(table)} (\n  ${lines.join(',\n  ')}\n)`];
  // the table is new and empty: a plain CREATE INDEX is instant and stays in the step's transaction
  for (const x of step.indexes ?? [])
    statements.push(
      `CREATE ${x.unique ? 'UNIQUE ' : ''}INDEX ${x.name ? `${ident(x.name)} ` : ''}ON ${qualified(table)} USING ${x.method} (${list(x.columns)})`,
    );
  return statements;
}

export async function relationExists(db: Queryable, table: string): Promise<boolean> {
  const t = parseTable(table);
  const { rows } = await db.query(
    `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [t.schema, t.name],
  );
  return rows.length > 0;
}

export async function runStatements(db: Queryable, statements: string[]): Promise<void> {
  for (const s of statements) await db.query(s);
}

/** Taken before looking at it, so no write slips in between the look and the drop (under lock_timeout). */
export async function lockTableExclusive(db: Queryable, table: string): Promise<void> {
  await db.query(`LOCK TABLE ${qualified(table)} IN ACCESS EXCLUSIVE MODE`);
}

/** How many rows, counting at most `max` (a big table is not scanned to the end to say "more than max"). */
export async function countRowsUpTo(db: Queryable, table: string, max: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT 1 FROM ${qualified(table)} LIMIT $1) r`, [max]);
  return oneRow({ rows }, `the row count of ${table}`).n;
}

export async function dropTable(db: Queryable, table: string): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${qualified(table)}`);
}
