import type { Pool } from 'pg';
import { ident, qualified } from '../identifiers';

/**
 * Local tenant databases to try a fleet on (`stagefill tenants`): made on the
 * server of the database the pool reaches, left alone when they exist.
 */
export async function createDatabaseIfMissing(admin: Pool, name: string): Promise<boolean> {
  const { rows } = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_database WHERE datname = $1', [name]);
  if (rows[0]?.n) return false;
  // CREATE DATABASE takes no parameters and no IF NOT EXISTS: the name is quoted, checked first
  await admin.query(`CREATE DATABASE ${ident(name)}`);
  return true;
}

/** The operator's own SQL file (a tenant's tables and rows), as psql -f would run it: every statement, in one round trip. */
export async function runSqlText(db: Pool, sql: string): Promise<void> {
  await db.query(sql);
}

/** A catalog table listing the tenants (`name`, `active`), for a fleet whose targets come from a query; names already there are kept as they are. */
export async function writeTenantCatalog(db: Pool, table: string, names: string[]): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS ${qualified(table)} (name text PRIMARY KEY, active boolean NOT NULL DEFAULT true)`);
  await db.query(`INSERT INTO ${qualified(table)} (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING`, [names]);
}
