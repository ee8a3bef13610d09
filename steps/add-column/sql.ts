import type { Queryable } from '../../db/pool';
import { qualified, ident } from '../../db/identifiers';
import { createRowTrigger, overRow } from '../../db/rollout/triggers';

/** addColumn: the column, and a trigger that sets it from `up` on every insert and update (dual write). */
export async function addComputedColumn(
  db: Queryable,
  c: { table: string; column: string; type: string; default?: string; up: string; trigger: string },
): Promise<void> {
  await db.query(
    `ALTER TABLE ${qualified(c.table)} ADD COLUMN ${ident(c.column)} ${c.type}${c.default !== undefined ? ` DEFAULT ${c.default}` : ''}`,
  );
  await createRowTrigger(
    db,
    c.table,
    c.trigger,
    `
BEGIN
  NEW.${ident(c.column)} := ${overRow(c.up)};
  RETURN NEW;
END`,
  );
}
