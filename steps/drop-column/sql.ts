import { Queryable } from '../../db/pool';
import { parseTable } from '../../db/identifiers';
import { createRowTrigger, overRow } from '../../db/triggers';
import { ident } from '../../db/identifiers';

export interface DroppedColumnInfo {
  type: string;
  notNull: boolean;
  /** A default, an identity or a generated expression: an insert that leaves the column out still gets a value. */
  hasValueSource: boolean;
}

export async function columnInfo(db: Queryable, table: string, column: string): Promise<DroppedColumnInfo | undefined> {
  const t = parseTable(table);
  const { rows } = await db.query<DroppedColumnInfo>(
    `SELECT format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull",
            (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS "hasValueSource"
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped`,
    [t.schema, t.name, column],
  );
  return rows[0];
}

/**
 * Inserts through the new version's view leave the column NULL (or at its
 * default): the trigger gives it `down`'s value. Only on INSERT and only
 * while NULL, so a legacy writer's own value is kept.
 */
export async function createDownTrigger(db: Queryable, c: { table: string; column: string; down: string; trigger: string }): Promise<void> {
  await createRowTrigger(db, c.table, c.trigger, `
BEGIN
  IF TG_OP = 'INSERT' AND NEW.${ident(c.column)} IS NULL THEN
    NEW.${ident(c.column)} := ${overRow(c.down)};
  END IF;
  RETURN NEW;
END`);
}
