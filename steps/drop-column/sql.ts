import type { Queryable } from '../../db/pool';
import { createRowTrigger, overRow } from '../../db/rollout/triggers';
import { ident } from '../../db/identifiers';
import { parseTable } from '../../core/common/table-name';

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
  await createRowTrigger(
    db,
    c.table,
    c.trigger,
    `
BEGIN
  IF TG_OP = 'INSERT' AND NEW.${ident(c.column)} IS NULL THEN
    NEW.${ident(c.column)} := ${overRow(c.down)};
  END IF;
  RETURN NEW;
END`,
  );
}

/**
 * What would stop `DROP COLUMN` (RESTRICT) at contract, other than
 * stagefill's own version views: views elsewhere reading the column, foreign
 * keys of other tables referencing it.
 */
export async function columnDependents(
  db: Queryable,
  table: string,
  column: string,
  isOwnViewSchema: (schema: string) => boolean,
): Promise<string[]> {
  const t = parseTable(table);
  const { rows } = await db.query<{ what: string; schema: string }>(
    `WITH col AS (
       SELECT c.oid AS rel, a.attnum FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3 AND NOT a.attisdropped)
     SELECT DISTINCT format('view %I.%I', vn.nspname, v.relname) AS what, vn.nspname AS schema
       FROM col JOIN pg_depend d ON d.refobjid = col.rel AND d.refobjsubid = col.attnum AND d.classid = 'pg_rewrite'::regclass
       JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
      WHERE v.oid <> col.rel
     UNION
     SELECT format('foreign key %I on %s', k.conname, k.conrelid::regclass), ''
       FROM col JOIN pg_constraint k ON k.contype = 'f' AND k.confrelid = col.rel AND col.attnum = ANY (k.confkey) AND k.conrelid <> col.rel
     ORDER BY 1`,
    [t.schema, t.name, column],
  );
  return rows.filter((r) => !isOwnViewSchema(r.schema)).map((r) => r.what);
}
