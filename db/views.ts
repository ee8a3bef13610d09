import { Queryable } from './pool';
import { qualified, ident, parseTable } from './identifiers';

/** The views an expose step creates: one schema per version of a table, holding one view named like the table. */

/** One version's read path: schema `schema` with a view named like the table, selecting `columns` (source AS name). */
export async function createVersionView(db: Queryable, v: { schema: string; table: string; columns: { source: string; as: string }[] }): Promise<void> {
  const list = v.columns.map((c) => (c.source === c.as ? ident(c.source) : `${ident(c.source)} AS ${ident(c.as)}`)).join(', ');
  await db.query(`CREATE SCHEMA ${ident(v.schema)}`);
  await db.query(`CREATE VIEW ${ident(v.schema)}.${ident(parseTable(v.table).name)} AS SELECT ${list} FROM ${qualified(v.table)}`);
}

/** Drops a version's view and then its schema; RESTRICT, so anything else someone put there stops the drop rather than vanishing with it. */
export async function dropVersionView(db: Queryable, schema: string, table: string): Promise<void> {
  await db.query(`DROP VIEW IF EXISTS ${ident(schema)}.${ident(parseTable(table).name)}`);
  await db.query(`DROP SCHEMA IF EXISTS ${ident(schema)}`);
}
