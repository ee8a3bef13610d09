import crypto from 'node:crypto';
import type { Queryable } from '../pool';
import { ident, qualified, SCHEMA } from '../identifiers';

/**
 * The two-way sync of an alterColumn: the legacy column is written only by
 * the application.
 *
 * Who wrote a row is decided from facts of the write, never by evaluating
 * `up` again (a volatile `up` gives a fresh value each time, so comparing
 * against it would mistake every backfilled row for a new-version write):
 *
 * - **the step's backfill** runs with the transaction-local setting
 *   `stagefill.writer = 'backfill'` (its generated transform sets it before
 *   any row is updated, see `syncedBackfillTransform`). The trigger leaves
 *   the row exactly as the UPDATE wrote it: the new column gets `up`, the
 *   legacy column is not touched.
 * - **a write through the new version**: a session whose search_path holds
 *   the new version's view schema (`viewSchemaName(table, v)`, the pgroll
 *   way), or one that sets the new column itself (only the new version's
 *   views show it; an INSERT with the new column not NULL, an UPDATE that
 *   changes it and leaves the legacy column alone). Only then is `down`
 *   evaluated, over a row shaped like the new version, and written to the
 *   legacy column. An INSERT through the new version that leaves the column
 *   out (the new column NULL) is not given `down(NULL)`: the legacy column
 *   keeps what Postgres gave it, its default as the old schema would, and
 *   the new column gets `up` of that.
 * - **everything else is the old version** (or a plain write to the table):
 *   when it changed the legacy column (or the row's new column is still
 *   empty, the backfill not there yet) the new column is set to `up` of the
 *   row; the legacy column keeps what the application wrote.
 *
 * So no statement stagefill runs, in its backfill or in a trigger on a write
 * that did not come through the new version, can change a legacy column. An
 * `up` that raises on a row makes that row's old-version write fail (as it
 * would make the backfill's chunk fail) rather than write a wrong new value.
 */

/** The name of the transaction-local setting the step's own backfill sets. */
export const WRITER_SETTING = 'stagefill.writer';
export const BACKFILL_WRITER = 'backfill';

export interface SyncTrigger {
  /** Qualified schema.table. */
  table: string;
  /** Physical legacy column. */
  oldColumn: string;
  /** Physical new column. */
  newColumn: string;
  /** Over the old version's row: the physical row, every column by its own name. */
  up: string;
  /** Over the new version's row: `newRow` names what it sees. */
  down: string;
  /** The new version's row: each column the new version shows, read from the physical `source`, named `as`. */
  newRow: { source: string; as: string }[];
  /** View schemas of the version(s) that show the new column: a writer with one on its search_path writes the new version. */
  newVersionSchemas: string[];
  /** Trigger and function name. */
  name: string;
}

/** A dollar-quoted body whose tag cannot occur inside it. */
function dollarQuote(body: string): string {
  let tag = `sf_${crypto.createHash('sha256').update(body).digest('hex').slice(0, 8)}`;
  while (body.includes(`$${tag}$`)) tag += 'x';
  return `$${tag}$${body}$${tag}$`;
}

const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** The function body: pure text, exported so unit tests and `plan` can show it. */
export function syncTriggerBody(t: SyncTrigger): string {
  const oldCol = ident(t.oldColumn);
  const newCol = ident(t.newColumn);
  // the physical new column stays readable under its own name, so a `down` written against it keeps working
  const shape = [...t.newRow];
  if (!shape.some((c) => c.as === t.newColumn)) shape.push({ source: t.newColumn, as: t.newColumn });
  const newRow = shape.map((c) => `NEW.${ident(c.source)} AS ${ident(c.as)}`).join(', ');
  const up = `(SELECT (${t.up}) FROM (SELECT (NEW).*) AS _r)`;
  const down = `(SELECT (${t.down}) FROM (SELECT ${newRow}) AS _r)`;
  const schemas = t.newVersionSchemas.length ? `ARRAY[${t.newVersionSchemas.map(literal).join(', ')}]::name[]` : `ARRAY[]::name[]`;
  return `
DECLARE
  is_new_version boolean;
BEGIN
  IF current_setting(${literal(WRITER_SETTING)}, true) = ${literal(BACKFILL_WRITER)} THEN
    RETURN NEW; -- the step's backfill: its UPDATE set the new column; the legacy column is the application's
  END IF;
  is_new_version := current_schemas(false) && ${schemas};
  IF TG_OP = 'INSERT' THEN
    IF NEW.${newCol} IS NOT NULL THEN
      NEW.${oldCol} := ${down};
    ELSE
      -- the old version, or the new one leaving the column out: the legacy column keeps what the insert gave it (the
      -- legacy default, as the old schema would), the new column is derived from it
      NEW.${newCol} := ${up};
    END IF;
  ELSIF is_new_version THEN
    IF NEW.${newCol} IS DISTINCT FROM OLD.${newCol} THEN
      NEW.${oldCol} := ${down};
    END IF;
  ELSIF NEW.${oldCol} IS DISTINCT FROM OLD.${oldCol} THEN
    NEW.${newCol} := ${up};
  ELSIF NEW.${newCol} IS DISTINCT FROM OLD.${newCol} THEN
    NEW.${oldCol} := ${down};
  ELSIF NEW.${newCol} IS NULL THEN
    -- a row the backfill has not reached: filled now, so the new column's NOT NULL check holds on every write
    NEW.${newCol} := ${up};
  END IF;
  RETURN NEW;
END`;
}

/** The trigger (on the table) and its function (in stagefill's schema), BEFORE INSERT OR UPDATE of each row. */
export async function createSyncTrigger(db: Queryable, t: SyncTrigger): Promise<void> {
  const fn = `${ident(SCHEMA)}.${ident(t.name)}`;
  await db.query(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS ${dollarQuote(syncTriggerBody(t))}`);
  await db.query(`CREATE TRIGGER ${ident(t.name)} BEFORE INSERT OR UPDATE ON ${qualified(t.table)} FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
}

/**
 * The backfill transform of an alterColumn: `up` over each row of a key
 * range into the new column, with `stagefill.writer` set for this
 * transaction before any row is updated (the CTE is read before the join
 * yields its first row), so the sync trigger knows the write is the
 * backfill's and leaves the legacy column alone.
 */
export function syncedBackfillTransform(table: string, column: string, up: string, key: string): string {
  return (
    `WITH _stagefill_writer AS MATERIALIZED (SELECT set_config(${literal(WRITER_SETTING)}, ${literal(BACKFILL_WRITER)}, true) AS _stagefill_set) ` +
    `UPDATE ${qualified(table)} SET ${ident(column)} = (${up}) FROM _stagefill_writer WHERE _stagefill_writer._stagefill_set IS NOT NULL AND ${ident(key)} >= :lo AND ${ident(key)} < :hi`
  );
}
