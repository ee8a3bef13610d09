import { escapeLiteral } from 'pg';
import type { Queryable } from '../../db/pool';
import { ident, qualified } from '../../db/identifiers';
import { parseTable } from '../../core/common/table-name';

export type CommentTarget = { on: 'table' } | { on: 'column' | 'index' | 'constraint'; name: string };

/** The comment on the object, null for none; undefined when there is no such object. */
export async function readComment(db: Queryable, table: string, t: CommentTarget): Promise<string | null | undefined> {
  const { schema, name: rel } = parseTable(table);
  const tableOid = `(SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)`;
  const q = async (sql: string, params: unknown[]) => {
    const { rows } = await db.query<{ comment: string | null }>(sql, params);
    return rows[0]?.comment; // undefined: no such object
  };
  switch (t.on) {
    case 'table':
      return q(`SELECT obj_description(oid, 'pg_class') AS comment FROM pg_class WHERE oid = ${tableOid}`, [schema, rel]);
    case 'column':
      return q(
        `SELECT col_description(attrelid, attnum) AS comment FROM pg_attribute WHERE attrelid = ${tableOid} AND attname = $3 AND attnum > 0 AND NOT attisdropped`,
        [schema, rel, t.name],
      );
    case 'index':
      return q(
        `SELECT obj_description(indexrelid, 'pg_class') AS comment FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = ${tableOid} AND c.relname = $3`,
        [schema, rel, t.name],
      );
    case 'constraint':
      return q(`SELECT obj_description(oid, 'pg_constraint') AS comment FROM pg_constraint WHERE conrelid = ${tableOid} AND conname = $3`, [
        schema,
        rel,
        t.name,
      ]);
  }
}

/** COMMENT takes no bind parameters: the text goes in as an escaped literal. */
export async function writeComment(db: Queryable, table: string, t: CommentTarget, comment: string | null): Promise<void> {
  const text = comment === null ? 'NULL' : escapeLiteral(comment);
  const target =
    t.on === 'table'
      ? `TABLE ${qualified(table)}`
      : t.on === 'column'
        ? `COLUMN ${qualified(table)}.${ident(t.name)}`
        : t.on === 'index'
          ? `INDEX ${ident(parseTable(table).schema)}.${ident(t.name)}`
          : `CONSTRAINT ${ident(t.name)} ON ${qualified(table)}`;
  await db.query(`COMMENT ON ${target} IS ${text}`);
}
