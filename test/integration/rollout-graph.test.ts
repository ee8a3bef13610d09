import type { backfillWorkflow } from '../../workflows/backfill/workflow';
import { startBackfill } from '../../client/operations';
import { unique, makeCounterTable, pool, client, useStack } from './harness';
import { makeOrders, legacyChecksum, startSpec, outcome, progressOf, connectionFor } from './rollout-harness';
import { catalogOf } from '../../chaos/sql';
import { ownWorker } from './own-worker';
import { counterSpec } from './backfill-checks';
import { recordFacts } from './report';

jest.setTimeout(240_000);

useStack();

/** orders and customers (sources) and daily_revenue (derived, one row per day). */
async function makeDiamondTables(): Promise<{ orders: string; customers: string; daily: string }> {
  const orders = await makeOrders(pool, unique('orders'), 6_000);
  const customers = `public.${unique('customers')}`;
  await pool.query(`CREATE TABLE ${customers} (id int PRIMARY KEY, name text NOT NULL)`);
  await pool.query(`INSERT INTO ${customers} SELECT g, 'c' || g FROM generate_series(1, 100) g`);
  const daily = `public.${unique('daily')}`;
  await pool.query(`CREATE TABLE ${daily} (day date PRIMARY KEY, note text)`);
  await pool.query(
    `INSERT INTO ${daily} SELECT d::date, 'x' FROM generate_series(date '2026-01-01', date '2026-01-10', interval '1 day') d`,
  );
  return { orders, customers, daily };
}

function diamond(t: { orders: string; customers: string; daily: string }, gateExpect: object) {
  // Throttled backfills so the two branches visibly overlap in time.
  const slow = { chunkSize: 500, throttle: { maxRowsPerSecond: 2500 } };
  return {
    kind: 'rollout',
    name: unique('diamond'),
    table: t.orders,
    maxConcurrentSteps: 4,
    steps: [
      {
        id: 'orders-cents',
        kind: 'addColumn',
        column: 'amount_cents',
        type: 'bigint',
        up: 'round(amount * 100)::bigint',
        backfill: slow,
        dependsOn: [],
      },
      {
        id: 'customers-tier',
        kind: 'addColumn',
        table: t.customers,
        column: 'tier',
        type: 'text',
        up: "CASE WHEN id % 2 = 0 THEN 'gold' ELSE 'std' END",
        backfill: { ...slow, chunkSize: 10, throttle: { maxRowsPerSecond: 40 } },
        dependsOn: [],
      },
      {
        id: 'daily-revenue',
        kind: 'addColumn',
        table: t.daily,
        column: 'gold_revenue_cents',
        type: 'bigint',
        up: `(SELECT COALESCE(sum(o.amount_cents), 0) FROM ${t.orders} o JOIN ${t.customers} c ON c.id = o.customer_id WHERE c.tier = 'gold' AND o.created_at >= day AND o.created_at < day + 1)`,
        backfill: { key: 'day', chunkSize: 3 },
        dependsOn: ['orders-cents', 'customers-tier'],
      },
      {
        id: 'totals-match',
        kind: 'gate',
        table: t.daily,
        dependsOn: ['daily-revenue'],
        checks: [
          {
            name: 'derived total = source total',
            sql: `SELECT (SELECT sum(gold_revenue_cents) FROM ${t.daily}) - (SELECT sum(o.amount_cents) FROM ${t.orders} o JOIN ${t.customers} c ON c.id = o.customer_id WHERE c.tier = 'gold' AND o.created_at < date '2026-01-11')`,
            expect: gateExpect,
            tolerance: 0,
          },
        ],
      },
    ],
  };
}

test('a diamond over three tables completes, its two branches running at the same time', async () => {
  const t = await makeDiamondTables();
  const { taskQueue } = await ownWorker();
  const { handle } = await startSpec(client, taskQueue, diamond(t, { eq: 0 }));
  const out = await outcome(handle);
  expect(out.state).toBe('completed');
  const steps = Object.fromEntries((await progressOf(handle)).steps.map((s) => [s.id, s]));
  const a = steps['orders-cents'];
  const b = steps['customers-tier'];
  // overlap: each branch started before the other finished
  expect(Date.parse(a!.startedAt!)).toBeLessThan(Date.parse(b!.finishedAt!));
  expect(Date.parse(b!.startedAt!)).toBeLessThan(Date.parse(a!.finishedAt!));
  expect(Date.parse(steps['daily-revenue']!.startedAt!)).toBeGreaterThanOrEqual(
    Math.max(Date.parse(a!.finishedAt!), Date.parse(b!.finishedAt!)),
  );
  const total = await pool.query(`SELECT sum(gold_revenue_cents)::bigint AS s FROM ${t.daily}`);
  expect(Number(total.rows[0].s)).toBeGreaterThan(0);
});

test('the same graph with a failing gate rolls all three tables back', async () => {
  const t = await makeDiamondTables();
  const before = {
    orders: await catalogOf(pool, t.orders),
    customers: await catalogOf(pool, t.customers),
    daily: await catalogOf(pool, t.daily),
  };
  const sums = {
    orders: await legacyChecksum(pool, t.orders),
    customers: (await pool.query(`SELECT md5(string_agg(id || name, ',' ORDER BY id)) s FROM ${t.customers}`)).rows[0].s,
  };
  const { taskQueue } = await ownWorker();
  const { handle } = await startSpec(client, taskQueue, diamond(t, { eq: -1 }));
  const out = await outcome(handle);
  expect(out.state).toBe('rolled_back');
  expect(await catalogOf(pool, t.orders)).toEqual(before.orders);
  expect(await catalogOf(pool, t.customers)).toEqual(before.customers);
  expect(await catalogOf(pool, t.daily)).toEqual(before.daily);
  expect(await legacyChecksum(pool, t.orders)).toBe(sums.orders);
  expect((await pool.query(`SELECT md5(string_agg(id || name, ',' ORDER BY id)) s FROM ${t.customers}`)).rows[0].s).toBe(sums.customers);
  // dependents were reverted before what they depend on
  const reverts = await pool.query(`SELECT subject FROM stagefill.events WHERE workflow_id = $1 AND event = 'step_reverted' ORDER BY id`, [
    handle.workflowId,
  ]);
  const order = reverts.rows.map((r) => r.subject);
  expect([...order].sort()).toEqual(['customers-tier', 'daily-revenue', 'orders-cents']);
  expect(order.indexOf('daily-revenue')).toBeLessThan(Math.min(order.indexOf('orders-cents'), order.indexOf('customers-tier')));
});

test('replaying a key range re-runs exactly the chunks that cover it, once, as a new generation', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10_000);
  const { taskQueue } = await ownWorker();
  const spec = counterSpec(table);
  const conn = connectionFor(client, taskQueue);
  const first = await startBackfill(conn, spec);
  await client.workflow.getHandle(first.workflowId).result();
  const replay = await startBackfill(conn, spec, { replay: { from: '3500', to: '5500' } });
  const result = await client.workflow.getHandle<typeof backfillWorkflow>(replay.workflowId).result();
  expect(result.state).toBe('completed');
  // the chunks covering [3500, 5500) ran again; every other row still once
  const gens = await pool.query(
    `SELECT c.generation, min(c.lo::bigint) AS lo, max(c.hi::bigint) AS hi, count(*)::int AS chunks
       FROM stagefill.checkpoints c JOIN stagefill.backfills b ON b.id = c.backfill_id WHERE b.name = $1 GROUP BY c.generation ORDER BY 1`,
    [spec.name],
  );
  expect(gens.rows).toHaveLength(2); // the first generation is kept for audit
  const g2 = gens.rows[1];
  expect(Number(g2.lo)).toBeLessThanOrEqual(3500);
  expect(Number(g2.hi)).toBeGreaterThanOrEqual(5500);
  const twice = await pool.query(`SELECT min(id)::int AS lo, max(id)::int AS hi, count(*)::int AS n FROM ${table} WHERE n = 2`);
  expect(twice.rows[0].lo).toBe(Number(g2.lo));
  expect(twice.rows[0].hi).toBe(Number(g2.hi) - 1);
  const other = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE n NOT IN (1, 2)`);
  expect(other.rows[0].n).toBe(0);
  expect(twice.rows[0].n).toBe(Number(g2.hi) - Number(g2.lo));
  recordFacts('replay of a key range', {
    rows: 10_000,
    replayedRange: `[3500, 5500)`,
    chunksReplayed: g2.chunks,
    rowsInReplayedChunks: twice.rows[0].n,
    rowsOutsideTouched: 0,
  });
});
