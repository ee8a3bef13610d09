import type { QueryResultRow } from 'pg';

/**
 * The row a statement always returns (an INSERT ... RETURNING, an aggregate, a SELECT of functions,
 * a row the caller holds a reference to): its first, typed without `undefined`. When there is none
 * after all, an Error naming `what` was read, where `rows[0].x` would fail as "cannot read
 * properties of undefined" far from the statement.
 */
export function oneRow<R extends QueryResultRow>(result: { rows: R[] }, what: string): R {
  const row = result.rows[0];
  if (row === undefined) throw new Error(`${what}: the statement returned no row`);
  return row;
}
