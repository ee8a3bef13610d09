import { Pool } from 'pg';

export const DEMO_TABLE = 'stagefill_demo.orders';

/** The demo's table, made anew each run: orders with an amount, a customer and a status. */
export async function resetDemoTable(pool: Pool, rows: number): Promise<void> {
  await pool.query('DROP SCHEMA IF EXISTS stagefill_demo CASCADE');
  await pool.query('CREATE SCHEMA stagefill_demo');
  await pool.query(`
    CREATE TABLE stagefill_demo.orders (
      id          bigint PRIMARY KEY,
      customer_id integer NOT NULL,
      amount      numeric(12, 2) NOT NULL,
      status      text NOT NULL,
      created_at  timestamptz NOT NULL
    )`);
  await pool.query(
    `INSERT INTO stagefill_demo.orders (id, customer_id, amount, status, created_at)
     SELECT g, 1 + (g * 7919) % 50000, round((random() * 500)::numeric, 2),
            (ARRAY['new', 'paid', 'shipped', 'refunded'])[1 + g % 4],
            timestamptz '2024-01-01' + make_interval(secs => g * 30)
       FROM generate_series(1, $1::int) g`,
    [rows],
  );
  await pool.query('VACUUM ANALYZE stagefill_demo.orders');
}
