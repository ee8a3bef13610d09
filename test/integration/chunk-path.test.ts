import { parseBackfillSpec } from '../../steps/spec';
import { openSession, prepared } from '../../db/pool';
import { closeLane } from '../../db/backfill/backfills';
import { unique, makeCounterTable, pool, useStack } from './harness';
import { runBackfill } from './backfill-harness';
import { checkpointChain, distribution } from './backfill-checks';

jest.setTimeout(180_000);

useStack();

function spec(table: string) {
  return parseBackfillSpec({
    kind: 'backfill',
    name: unique('cut'),
    table,
    key: 'id',
    chunkSize: 1000,
    parallelism: 2,
    transform: `UPDATE ${table} SET n = n + 1 WHERE id >= :lo AND id < :hi`,
  });
}

/** Runs the backfill; returns its checkpoints' key spans and row counts. */
async function backfill(table: string): Promise<{ spans: number[]; rows: number[] }> {
  const s = spec(table);
  expect((await runBackfill(s)).state).toBe('completed');
  const chain = await checkpointChain(pool, s.table, s.name);
  expect(chain.problems).toEqual([]);
  return { spans: chain.checkpoints.map((c) => Number(c.hi) - Number(c.lo)), rows: chain.checkpoints.map((c) => Number(c.rows)) };
}

test('a dense unique integer key is cut by arithmetic: every chunk spans chunkSize keys, every row once', async () => {
  const table = await makeCounterTable(pool, unique('dense'), 20_000);
  const { spans, rows } = await backfill(table);
  expect(await distribution(pool, table)).toEqual({ '1': 20_000 });
  // even partitions of 2,500 keys: two full chunks and a 500-key end each
  expect(spans.filter((s) => s === 1000)).toHaveLength(16);
  expect(spans.every((s) => s <= 1000)).toBe(true);
  expect(rows.every((r) => r <= 1000)).toBe(true);
});

test('a sparse key is cut by counting rows: chunks hold chunkSize rows and span many keys, every row once', async () => {
  const table = await makeCounterTable(pool, unique('sparse'), 20_000, { step: 10 });
  const { spans, rows } = await backfill(table);
  expect(await distribution(pool, table)).toEqual({ '1': 20_000 });
  // arithmetic cuts would have made 1000-key chunks of 100 rows
  expect(rows.filter((r) => r === 1000).length).toBeGreaterThanOrEqual(10);
  expect(rows.every((r) => r <= 1000)).toBe(true);
  expect(Math.max(...spans)).toBeGreaterThan(1000);
});

test('a key that is not unique is cut by counting rows: no chunk holds more than chunkSize rows', async () => {
  const name = unique('dup');
  // three rows per key value, dense values: an arithmetic cut of 1000 keys would take 3000 rows
  await pool.query(`CREATE TABLE public."${name}" (id bigint NOT NULL, n int NOT NULL DEFAULT 0)`);
  await pool.query(`INSERT INTO public."${name}" (id) SELECT g / 3 FROM generate_series(3, 30002) g`);
  await pool.query(`CREATE INDEX ON public."${name}" (id)`);
  await pool.query(`ANALYZE public."${name}"`);
  const table = `public.${name}`;
  const { rows } = await backfill(table);
  expect(await distribution(pool, table)).toEqual({ '1': 30_000 });
  expect(rows.reduce((a, b) => a + b, 0)).toBe(30_000);
  expect(Math.max(...rows)).toBeLessThanOrEqual(1000);
});

test('a connection that collected many prepared statements is retired, not pooled again', async () => {
  const session = await openSession(pool);
  const pid = (await session.client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
  for (let i = 0; i < 70; i++) await session.client.query(prepared(session.client, `SELECT $1::int + ${i} AS v`, [1]));
  const held = await session.client.query('SELECT count(*)::int AS n FROM pg_prepared_statements');
  expect(held.rows[0].n).toBe(70);
  expect(await closeLane(session.client)).toBe(false);
  await session.close(true);
  // the backend that held them is gone
  for (let i = 0; i < 50; i++) {
    const alive = await pool.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid]);
    if (alive.rows[0].n === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`backend ${pid} still connected`);
});

test("a chunk's checkpoint fires no trigger: the partition's UPDATE it is inserted from is its only check", async () => {
  // a foreign key's check ran as one more statement and one more WAL record on every chunk (migration 015)
  const { rows } = await pool.query<{ tgname: string }>(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'stagefill.checkpoints'::regclass`);
  expect(rows).toEqual([]);
  const table = await makeCounterTable(pool, unique('notrig'), 3000);
  await backfill(table);
  expect(await distribution(pool, table)).toEqual({ '1': 3000 });
});
