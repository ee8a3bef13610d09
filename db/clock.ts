import type { Queryable } from './pool';
import { oneRow } from './rows';

/**
 * The database's clock, in ms since the epoch. A worker's own clock may drift (a host whose NTP stopped); a time
 * that must mean the same to every worker (a backfill's deadline, which the workflow takes from the Temporal
 * server's clock) is compared with this one, the servers' time, not with the worker's.
 */
export async function databaseNowMs(db: Queryable): Promise<number> {
  const result = await db.query<{ ms: string }>(`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint::text AS ms`);
  return Number(oneRow(result, "the database's clock").ms);
}
