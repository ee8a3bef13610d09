import type { Queryable } from '../pool';
import { qualified, ident } from '../identifiers';
import { parseTable } from '../../core/common/table-name';

/** The views an expose step creates: one schema per version of a table, holding one view named like the table. */

/**
 * One version's read path: schema `schema` with a view (named like the table,
 * or `name`) selecting `columns` (source AS name); `name: null`, the schema
 * alone (the version does not see the table).
 */
export async function createVersionView(
  db: Queryable,
  v: { schema: string; table: string; columns: { source: string; as: string }[]; name?: string | null },
): Promise<void> {
  const list = v.columns.map((c) => (c.source === c.as ? ident(c.source) : `${ident(c.source)} AS ${ident(c.as)}`)).join(', ');
  await db.query(`CREATE SCHEMA ${ident(v.schema)}`);
  if (v.name === null) return;
  await db.query(
    `CREATE VIEW ${ident(v.schema)}.${ident(v.name ?? parseTable(v.table).name)} AS SELECT ${list} FROM ${qualified(v.table)}`,
  );
}

/**
 * Drops a version's view (named like the table, or `name`) and then its
 * schema; RESTRICT, so anything else someone put there stops the drop rather
 * than vanishing with it.
 */
export async function dropVersionView(db: Queryable, schema: string, table: string, name?: string | null): Promise<void> {
  if (name !== null) await db.query(`DROP VIEW IF EXISTS ${ident(schema)}.${ident(name ?? parseTable(table).name)}`);
  await db.query(`DROP SCHEMA IF EXISTS ${ident(schema)}`);
}
