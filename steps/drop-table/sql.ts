import type { Queryable } from '../../db/pool';
import { qualified } from '../../db/identifiers';
import { parseTable } from '../../core/common/table-name';

/**
 * What would stop a plain (RESTRICT) DROP TABLE, other than stagefill's own
 * version views: views elsewhere reading it, foreign keys from other tables.
 */
export async function tableDependents(db: Queryable, table: string, isOwnViewSchema: (schema: string) => boolean): Promise<string[]> {
  const t = parseTable(table);
  const { rows } = await db.query<{ what: string; schema: string }>(
    `WITH rel AS (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)
     SELECT DISTINCT format('view %I.%I', vn.nspname, v.relname) AS what, vn.nspname AS schema
       FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
      WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = (SELECT oid FROM rel) AND v.oid <> (SELECT oid FROM rel)
     UNION
     SELECT format('foreign key %I on %s', k.conname, k.conrelid::regclass), ''
       FROM pg_constraint k WHERE k.contype = 'f' AND k.confrelid = (SELECT oid FROM rel) AND k.conrelid <> (SELECT oid FROM rel)
     ORDER BY 1`,
    [t.schema, t.name],
  );
  return rows.filter((r) => !isOwnViewSchema(r.schema)).map((r) => r.what);
}

export async function dropTableRestrict(db: Queryable, table: string): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${qualified(table)}`);
}
