import type { Queryable } from '../../db/pool';
import { parseTable } from '../../core/common/table-name';

export interface ConstraintInfo {
  type: string;
  def: string;
  /** Foreign keys of other tables (or this one) that need this constraint's index. */
  dependents: string[];
}

export async function constraintInfo(db: Queryable, table: string, name: string): Promise<ConstraintInfo | undefined> {
  const t = parseTable(table);
  const { rows } = await db.query<ConstraintInfo>(
    `SELECT k.contype::text AS type, pg_get_constraintdef(k.oid) AS def,
            ARRAY(SELECT format('%s on %s', f.conname, f.conrelid::regclass) FROM pg_constraint f
                   WHERE f.contype = 'f' AND k.contype IN ('p', 'u') AND f.conindid = k.conindid ORDER BY 1) AS dependents
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND k.conname = $3`,
    [t.schema, t.name, name],
  );
  return rows[0];
}
