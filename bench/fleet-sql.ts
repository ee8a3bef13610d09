import type { Pool } from 'pg';
import { createPool } from '../db/pool';

/** The fleet benchmark's own statements: how many connections the fleet workers hold (their pools name themselves `stagefill-fleet:<target>`). */
export async function fleetConnections(admin: Pool): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'stagefill-fleet:%'`,
  );
  return rows[0]?.n ?? 0;
}

/** Every client backend of the server. */
export async function backendCount(admin: Pool): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend'`,
  );
  return rows[0]?.n ?? 0;
}

/** VACUUM the benchmark's table in one tenant database. */
export async function vacuumOrders(url: string): Promise<void> {
  const pool = createPool({ url, max: 1, applicationName: 'stagefill-bench' });
  try {
    await pool.query('VACUUM (ANALYZE) public.orders');
  } finally {
    await pool.end().catch(() => {});
  }
}
