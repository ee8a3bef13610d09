import type { Pool } from 'pg';

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
     SELECT g, 1 + (g::bigint * 7919) % 50000, round((random() * 500)::numeric, 2),
            (ARRAY['new', 'paid', 'shipped', 'refunded'])[1 + g % 4],
            timestamptz '2024-01-01' + make_interval(secs => g * 30)
       FROM generate_series(1, $1::int) g`,
    [rows],
  );
  await pool.query('VACUUM ANALYZE stagefill_demo.orders');
}

/**
 * The demo rollout: money stored as numeric moves to integer cents. Expand
 * (column + dual-write trigger), backfill the history in chunks, check it,
 * expose a v2 read path beside v1, soak, then contract once the rollback
 * window has passed.
 */
export function demoRolloutSpec(): unknown {
  const stamp = new Date()
    .toISOString()
    .replace(/[^0-9]/g, '')
    .slice(0, 14);
  return {
    kind: 'rollout',
    name: `demo-cents-${stamp}`,
    table: DEMO_TABLE,
    rollbackWindow: '5s',
    steps: [
      {
        kind: 'addColumn',
        column: 'amount_cents',
        type: 'bigint',
        up: 'round(amount * 100)::bigint',
        backfill: { chunkSize: 5000, parallelism: 2 },
      },
      {
        kind: 'gate',
        checks: [
          { name: 'every row has cents', sql: `SELECT count(*) FROM ${DEMO_TABLE} WHERE amount_cents IS NULL`, expect: { eq: 0 } },
          {
            name: 'cents match amount',
            sql: `SELECT count(*) FROM ${DEMO_TABLE} WHERE amount_cents <> round(amount * 100)::bigint`,
            expect: { eq: 0 },
          },
          { name: 'row count unchanged', sql: `SELECT count(*) FROM ${DEMO_TABLE}`, unchanged: true },
        ],
      },
      { kind: 'expose', version: 2 },
      {
        kind: 'soak',
        duration: '5s',
        every: '1s',
        checks: [{ name: 'no nulls', sql: `SELECT count(*) FROM ${DEMO_TABLE} WHERE amount_cents IS NULL`, expect: { eq: 0 } }],
      },
      { kind: 'contract' },
    ],
  };
}
