import type { Pool, QueryArrayConfig } from 'pg';
import { withTransaction } from '../pool';

/**
 * A fleet's targets-by-query: the operator's SELECT against the catalog
 * database, in a READ ONLY transaction (it cannot change the catalog, whatever
 * it says) under a statement timeout (a slow catalog fails the plan, it does
 * not hang it). The first column of each row, as returned.
 */
export async function queryCatalogNames(pool: Pool, query: string, timeoutMs: number): Promise<unknown[]> {
  return withTransaction(pool, async (c) => {
    await c.query('SET TRANSACTION READ ONLY');
    await c.query(`SELECT set_config('statement_timeout', $1, true)`, [String(Math.max(1, Math.round(timeoutMs)))]);
    // the extended protocol takes one statement: `SELECT ...; COMMIT; DELETE ...` is refused, not run outside the READ ONLY
    const statement: QueryArrayConfig & { queryMode: 'extended' } = { text: query, rowMode: 'array', queryMode: 'extended' };
    const r = await c.query<unknown[]>(statement);
    if (!r.fields?.length) throw new Error('the query returns no columns; it must SELECT target names as its first column');
    return r.rows.map((row) => row[0]);
  });
}
