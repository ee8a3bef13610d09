import type { Pool } from 'pg';
import type { Queryable } from '../pool';
import { parseTable } from '../../core/common/table-name';

/** The table's columns as `name type [not null]` in column order, or null when it does not exist (core/fleet/shape.ts compares them). */
export async function tableShape(db: Queryable, table: string): Promise<string[] | null> {
  const t = parseTable(table);
  const { rows } = await db.query<{ col: string | null }>(
    `SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END AS col
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
      ORDER BY a.attnum`,
    [t.schema, t.name],
  );
  if (!rows.length) return null;
  return rows.filter((r) => r.col !== null).map((r) => r.col!);
}

export interface TargetTableShape {
  target: string;
  table: string;
  /** The table's columns (see tableShape), null when it does not exist. */
  shape: string[] | null;
  /** The target could not be read (its database is down, refuses the login). */
  error?: string;
}

/** Every target's tables' shapes, a few targets at a time; one that cannot be read carries its error. */
export async function readTableShapes(targets: string[], tables: string[], poolOf: (t: string) => Pool): Promise<TargetTableShape[]> {
  const out: TargetTableShape[] = [];
  const queue = [...targets];
  const worker = async () => {
    for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
      const target = t;
      for (const table of tables) {
        try {
          out.push({ target, table, shape: await tableShape(poolOf(target), table) });
        } catch (err) {
          out.push({ target, table, shape: null, error: (err as Error).message });
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, targets.length) }, worker));
  return out.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : a.table < b.table ? -1 : 1));
}
