import { Queryable } from '../../db/pool';
import { qualified, ident } from '../../db/identifiers';
import { createRowTrigger, overRow } from '../../db/triggers';

/**
 * alterColumn: a new column kept equal to `up` of the old one and the old to
 * `down` of the new, whichever side a writer changed. An update that sets
 * the new column to what `up` already gives (the backfill does exactly that)
 * leaves the old column alone, so a lossy `down` never rewrites legacy data.
 */
export async function addSyncedColumn(
  db: Queryable,
  c: { table: string; column: string; newColumn: string; type: string; up: string; down: string; trigger: string },
): Promise<void> {
  const oldCol = ident(c.column);
  const newCol = ident(c.newColumn);
  await db.query(`ALTER TABLE ${qualified(c.table)} ADD COLUMN ${newCol} ${c.type}`);
  await createRowTrigger(db, c.table, c.trigger, `
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.${newCol} IS NULL THEN
      NEW.${newCol} := ${overRow(c.up)};
    ELSIF NEW.${oldCol} IS NULL THEN
      NEW.${oldCol} := ${overRow(c.down)};
    END IF;
  ELSIF NEW.${oldCol} IS DISTINCT FROM OLD.${oldCol} THEN
    NEW.${newCol} := ${overRow(c.up)};
  ELSIF NEW.${newCol} IS DISTINCT FROM OLD.${newCol} AND NEW.${newCol} IS DISTINCT FROM ${overRow(c.up)} THEN
    NEW.${oldCol} := ${overRow(c.down)};
  END IF;
  RETURN NEW;
END`);
}
