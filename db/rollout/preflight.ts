import type { Pool } from 'pg';
import type { Queryable } from '../pool';
import { withSession } from '../pool';
import { ident, qualified } from '../identifiers';
import { parseTable } from '../../core/common/table-name';

/**
 * What `stagefill plan` and `start` read before a rollout starts, so that a
 * mistake is refused (exit 2) before any work: which of its tables exist, and
 * which indexes of an altered column could not be built over its new type.
 * Changes nothing: the probe's temporary table lives in a transaction that is
 * rolled back.
 */

/** The tables (schema.table, canonical) of `tables` that exist as tables (plain or partitioned). */
export async function existingTables(db: Queryable, tables: string[]): Promise<Set<string>> {
  const refs = tables.map(parseTable);
  const { rows } = await db.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name
       FROM unnest($1::text[], $2::text[]) AS t(schema, name)
       JOIN pg_namespace n ON n.nspname = t.schema
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name AND c.relkind IN ('r', 'p')`,
    [refs.map((r) => r.schema), refs.map((r) => r.name)],
  );
  return new Set(rows.map((r) => `${r.schema}.${r.name}`));
}

export interface IndexThatCannotFollow {
  index: string;
  /** Postgres's own words, e.g. `operator class "text_pattern_ops" does not accept data type integer`. */
  error: string;
}

/**
 * Builds each index (its `USING ...` tail, as the catalog prints it) on an
 * empty temporary copy of `table` whose `column` has `newType`: the indexes
 * Postgres refuses there are the counterparts an alterColumn could not build
 * after its backfill. The copy takes ACCESS SHARE on `table` for an instant
 * (LIKE); everything is rolled back.
 */
export async function indexesThatCannotFollow(
  pool: Pool,
  table: string,
  column: string,
  newType: string,
  indexes: { name: string; indexTail: string }[],
): Promise<IndexThatCannotFollow[]> {
  if (!indexes.length) return [];
  return withSession(pool, async (db) => {
    const out: IndexThatCannotFollow[] = [];
    await db.query('BEGIN');
    try {
      await db.query(`CREATE TEMPORARY TABLE stagefill_type_probe (LIKE ${qualified(table)}) ON COMMIT DROP`);
      await db.query(`ALTER TABLE pg_temp.stagefill_type_probe ALTER COLUMN ${ident(column)} TYPE ${newType} USING NULL`);
      for (const x of indexes) {
        await db.query('SAVEPOINT stagefill_index_probe');
        try {
          await db.query(`CREATE INDEX ON pg_temp.stagefill_type_probe ${x.indexTail}`);
        } catch (err) {
          out.push({ index: x.name, error: (err as Error).message });
        }
        await db.query('ROLLBACK TO SAVEPOINT stagefill_index_probe');
      }
    } finally {
      await db.query('ROLLBACK');
    }
    return out;
  });
}
