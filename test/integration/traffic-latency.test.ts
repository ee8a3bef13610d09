import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pool } from 'pg';
import { createPool } from '../../db/pool';
import { statementCounters } from '../../db/backfill/health';
import { statementsP99 } from '../../core/backfill/traffic-latency';
import { startEmbeddedPostgres } from '../../devstack';
import type { EmbeddedPostgres } from '../../devstack/postgres';
import { pool, useStack } from './harness';

/**
 * The traffic's latency as a p99Ratio budget reads it: pg_stat_statements on
 * a PostgreSQL of its own that loads it (shared_preload_libraries), with
 * statements of known latency; and no reading where it is not loaded.
 */
jest.setTimeout(120_000);

useStack();

let pg: EmbeddedPostgres;
let dir: string;
let db: Pool;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-pgss-'));
  pg = await startEmbeddedPostgres({
    dir: path.join(dir, 'pg'),
    logFile: path.join(dir, 'postgres.log'),
    settings: { shared_preload_libraries: 'pg_stat_statements', fsync: 'off', shared_buffers: '32MB' },
  });
  db = createPool({ url: pg.url, max: 2 });
  await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
});

afterAll(async () => {
  await db?.end();
  await pg?.stop();
  const home = path.join(dir, 'pg');
  if (fs.existsSync(home)) fs.rmSync(fs.realpathSync(home), { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
});

test("the traffic's p99 between two readings: the slow statements set it, stagefill's own and those before the first reading do not", async () => {
  await db.query('CREATE TABLE public.hot (id int PRIMARY KEY, n int NOT NULL)');
  await db.query('INSERT INTO public.hot VALUES (1, 0)');
  // before the first reading: slow, and not counted
  for (let i = 0; i < 5; i++) await db.query('SELECT pg_sleep(0.2)');
  const before = (await statementCounters(db))!;
  expect(before).toBeDefined();
  // the traffic: 300 fast updates and 12 statements of 30 ms (4%: the p99 is among them)
  for (let i = 0; i < 300; i++) await db.query('UPDATE public.hot SET n = n + 1 WHERE id = 1');
  for (let i = 0; i < 12; i++) await db.query('SELECT pg_sleep(0.03)');
  // stagefill's own bookkeeping names its schema: left out, however slow
  await db.query('CREATE SCHEMA IF NOT EXISTS stagefill');
  await db.query('SELECT pg_sleep(0.5) FROM (SELECT 1 AS stagefill) x');
  const after = (await statementCounters(db))!;
  expect(after.some((s) => s.calls > 0)).toBe(true);
  const p99 = statementsP99(before, after)!;
  expect(p99).toBeGreaterThan(25);
  expect(p99).toBeLessThan(150);

  // only the fast ones since: a p99 far under the sleeps
  for (let i = 0; i < 200; i++) await db.query('UPDATE public.hot SET n = n + 1 WHERE id = 1');
  const fast = statementsP99(after, (await statementCounters(db))!)!;
  expect(fast).toBeLessThan(10);
});

test('without pg_stat_statements loaded (the shared test database), no reading: the budget stays relative to the probe', async () => {
  expect(await statementCounters(pool)).toBeUndefined();
});
