import { WorkflowFailedError } from '@temporalio/client';
import { backfillWorkflowId } from '../../core/common/ids';
import { parseBackfillSpec } from '../../steps/spec';
import { printPlan } from '../../client/plan-output';
import { unique, pool, client, useStack, env } from './harness';
import { runBackfill, startRun, withWorker } from './backfill-harness';
import { replayBackfill } from '../../client/runs';
import { readHistory, formatHistory } from '../../client/history';
import { distribution, checkpointChain, runWithKills, connectionFor } from './backfill-checks';
import type { BackfillSpec } from '../../core/common/fields';

// Needs dist/ (`npm run build`): the SIGKILLed worker is a real process.
jest.setTimeout(240_000);

useStack();

/**
 * Backfills on keys other than a dense integer: a random uuid, a text key
 * under a non-C collation, a composite (tenant_id, id) key with one tenant
 * holding half the rows, and partitioned tables. Each SIGKILL test: a
 * non-idempotent transform (n = n + 1) with the worker killed at least three
 * times mid-run, every row ends at exactly 1, no chunk over chunkSize rows.
 */

const CHUNK = 2000;

function keySpec(table: string, key: string | string[], where: string, extra: Record<string, unknown> = {}): BackfillSpec {
  return parseBackfillSpec({
    kind: 'backfill',
    name: unique('bf'),
    table,
    key,
    chunkSize: CHUNK,
    parallelism: 2,
    transform: `UPDATE ${table} SET n = n + 1 WHERE ${where}`,
    ...extra,
  });
}

async function killedThreeTimes(table: string, s: BackfillSpec, total: number): Promise<void> {
  const started = Date.now();
  // throttled so three kills (each costs a heartbeat timeout before the lease is retried) land mid-run
  const { result, kills } = await runWithKills({ pool, client }, s, { total, kills: 3, spreadMs: 1000 });
  const chain = await checkpointChain(pool, table, s.name);
  const biggest = Math.max(...chain.checkpoints.map((c) => c.rows));
  process.stderr.write(
    `[keys] ${table} by ${JSON.stringify(s.key)}: ${total} rows, ${kills.length} SIGKILLs at ${kills.map((k) => k.rowsDoneAtKill).join(', ')} rows done; ` +
      `${chain.chunks} chunks over ${chain.partitions} partitions, largest ${biggest} rows; ${((Date.now() - started) / 1000).toFixed(1)}s\n`,
  );
  expect(kills.length).toBeGreaterThanOrEqual(3);
  expect(result.state).toBe('completed');
  expect(await distribution(pool, table)).toEqual({ '1': total });
  expect(chain.problems).toEqual([]);
  expect(chain.rows).toBe(total);
  expect(biggest).toBeLessThanOrEqual(CHUNK);
}

test('uuid v4 key, worker SIGKILLed 3 times: every row once, no chunk over chunkSize', async () => {
  const total = 100_000;
  const name = unique('uuidk');
  const table = `public.${name}`;
  await pool.query(`CREATE TABLE ${table} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), n int NOT NULL DEFAULT 0)`);
  await pool.query(`INSERT INTO ${table} (n) SELECT 0 FROM generate_series(1, $1)`, [total]);
  await pool.query(`ANALYZE ${table}`);
  await killedThreeTimes(table, keySpec(table, 'id', 'id >= :lo AND id < :hi', { throttle: { maxRowsPerSecond: 15_000 } }), total);
});

/** A collation that does not order like C (ICU's en-US if this server has ICU, else a libc one). */
async function nonCCollation(): Promise<string> {
  const { rows } = await pool.query<{ name: string }>(
    `SELECT quote_ident(collname) AS name FROM pg_collation
      WHERE collencoding IN (-1, (SELECT encoding FROM pg_database WHERE datname = current_database()))
        AND collname NOT IN ('C', 'POSIX', 'default', 'ucs_basic', 'und-x-icu')
      ORDER BY collname = 'en-US-x-icu' DESC, collprovider = 'i' DESC, collname LIKE 'en_US%' DESC, collname LIMIT 1`,
  );
  if (!rows.length) throw new Error('no collation other than C on this server');
  return rows[0]!.name;
}

test('text key under a non-C collation, worker SIGKILLed 3 times: every row once, chunks cut in the collation order', async () => {
  const total = 100_000;
  const collation = await nonCCollation();
  const name = unique('textk');
  const table = `public.${name}`;
  await pool.query(`CREATE TABLE ${table} (k text COLLATE ${collation} PRIMARY KEY, n int NOT NULL DEFAULT 0)`);
  // mixed case, accents and punctuation: the collation's order is not the bytes' order
  await pool.query(
    `INSERT INTO ${table} (k) SELECT (ARRAY['apple', 'Apple', 'äpfel', 'Zebra', 'zebra', 'éclair', 'Eclair', '_x', 'b-2', 'B 1'])[1 + g % 10] || '-' || md5(g::text) FROM generate_series(1, $1) g`,
    [total],
  );
  await pool.query(`ANALYZE ${table}`);
  const order = await pool.query(
    `SELECT (SELECT array_agg(k ORDER BY k) FROM (VALUES ('a'), ('B'), ('c')) v(k)) = (SELECT array_agg(k ORDER BY k COLLATE "C") FROM (VALUES ('a'), ('B'), ('c')) v(k)) AS same`,
  );
  const collated = await pool.query(`SELECT 'a' COLLATE ${collation} < 'B' COLLATE ${collation} AS lower_first`);
  process.stderr.write(
    `[keys] text key collation ${collation}: 'a' < 'B' is ${collated.rows[0].lower_first} (C: false); default db order like C: ${order.rows[0].same}\n`,
  );
  expect(collated.rows[0].lower_first).toBe(true);
  await killedThreeTimes(table, keySpec(table, 'k', 'k >= :lo AND k < :hi', { throttle: { maxRowsPerSecond: 15_000 } }), total);
  const keyType = await pool.query(`SELECT key_type FROM stagefill.backfills WHERE table_name = $1`, [table]);
  expect(keyType.rows[0].key_type).toContain('COLLATE');
});

test('composite (tenant_id, id) key, one tenant holding half the rows, worker SIGKILLed 3 times: every row once, no chunk over chunkSize', async () => {
  const total = 100_000;
  const name = unique('tenk');
  const table = `public.${name}`;
  await pool.query(
    `CREATE TABLE ${table} (tenant_id int NOT NULL, id bigint NOT NULL, n int NOT NULL DEFAULT 0, PRIMARY KEY (tenant_id, id))`,
  );
  // tenant 7 holds half the rows; 49 others share the rest; ids repeat across tenants
  await pool.query(
    `INSERT INTO ${table} (tenant_id, id) SELECT CASE WHEN g % 2 = 0 THEN 7 ELSE 8 + g % 49 END, CASE WHEN g % 2 = 0 THEN g / 2 ELSE g END FROM generate_series(1, $1) g`,
    [total],
  );
  await pool.query(`ANALYZE ${table}`);
  const s = keySpec(table, ['tenant_id', 'id'], '(tenant_id, id) >= :lo AND (tenant_id, id) < :hi', {
    throttle: { maxRowsPerSecond: 15_000 },
  });
  await killedThreeTimes(table, s, total);
  // checkpoints keep the composite key as its columns' text; people see it as a tuple
  const chain = await checkpointChain(pool, table, s.name);
  expect(JSON.parse(chain.checkpoints[0]!.lo)).toHaveLength(2);
  const plan = await printPlan(s, 'text');
  expect(plan).toMatch(/by \(tenant_id, id\): chunks of 2000 rows/);
  expect(plan).toContain('key (tenant_id, id): integer, bigint, unique');
  expect(plan).toMatch(/range \[\(7, \d+\), \(56, \d+\)\)/);
});

test('a table partitioned by its key: every leaf backfilled once, no key partition spans two leaves, plan shows the leaves', async () => {
  const name = unique('parted');
  const table = `public.${name}`;
  await pool.query(`CREATE TABLE ${table} (id bigint NOT NULL, n int NOT NULL DEFAULT 0, PRIMARY KEY (id)) PARTITION BY RANGE (id)`);
  const bounds: [number, number][] = [
    [1, 10_001],
    [10_001, 25_001],
    [25_001, 30_001],
    [30_001, 100_001],
  ];
  for (const [i, [lo, hi]] of bounds.entries())
    await pool.query(`CREATE TABLE public."${name}_p${i}" PARTITION OF ${table} FOR VALUES FROM (${lo}) TO (${hi})`);
  await pool.query(`CREATE TABLE public."${name}_empty" PARTITION OF ${table} FOR VALUES FROM (100001) TO (200001)`);
  // sparse in the last leaf: 1 key in 7
  await pool.query(
    `INSERT INTO ${table} (id) SELECT g FROM generate_series(1, 30000) g UNION ALL SELECT g FROM generate_series(30001, 100000, 7) g`,
  );
  await pool.query(`ANALYZE ${table}`);
  const total = Number((await pool.query(`SELECT count(*) AS c FROM ${table}`)).rows[0].c);
  const s = keySpec(table, 'id', 'id >= :lo AND id < :hi', { chunkSize: 1000 });

  const plan = await printPlan(s, 'text');
  expect(plan).toMatch(/partitioned: 5 leaf partitions/);
  for (let i = 0; i < 4; i++) expect(plan).toContain(`public.${name}_p${i} [`);

  const result = await runBackfill(s);
  expect(result.state).toBe('completed');
  expect(await distribution(pool, table)).toEqual({ '1': total });
  const chain = await checkpointChain(pool, table, s.name);
  expect(chain.problems).toEqual([]);
  expect(Math.max(...chain.checkpoints.map((c) => c.rows))).toBeLessThanOrEqual(1000);
  // every key partition names one leaf and lies inside its bounds
  const parts = await pool.query<{ leaf: string; lo: string; hi: string }>(
    `SELECT p.leaf, p.lo, p.hi FROM stagefill.backfill_partitions p JOIN stagefill.backfills b ON b.id = p.backfill_id AND b.generation = p.generation WHERE b.name = $1`,
    [s.name],
  );
  expect(new Set(parts.rows.map((p) => p.leaf))).toEqual(new Set(bounds.map((_, i) => `public.${name}_p${i}`)));
  for (const p of parts.rows) {
    const [lo, hi] = bounds[Number(p.leaf.slice(-1))]!;
    expect(Number(p.lo)).toBeGreaterThanOrEqual(lo);
    expect(Number(p.hi)).toBeLessThanOrEqual(hi);
  }
});

test('a partition attached during a run is refused with the leaves that changed; a table not partitioned by the key is refused at plan', async () => {
  const name = unique('attach');
  const table = `public.${name}`;
  await pool.query(`CREATE TABLE ${table} (id bigint NOT NULL, n int NOT NULL DEFAULT 0, PRIMARY KEY (id)) PARTITION BY RANGE (id)`);
  await pool.query(`CREATE TABLE public."${name}_a" PARTITION OF ${table} FOR VALUES FROM (1) TO (50001)`);
  await pool.query(`INSERT INTO ${table} (id) SELECT generate_series(1, 50000)`);
  await pool.query(`ANALYZE ${table}`);
  const s = keySpec(table, 'id', 'id >= :lo AND id < :hi', { chunkSize: 500, parallelism: 1, throttle: { maxRowsPerSecond: 5000 } });
  await withWorker(async (taskQueue) => {
    const handle = await startRun(taskQueue, s, { leaseMs: 300 });
    await new Promise((r) => setTimeout(r, 1500));
    await pool.query(`CREATE TABLE public."${name}_b" PARTITION OF ${table} FOR VALUES FROM (50001) TO (60001)`);
    const err = await handle.result().catch((e) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(String(err.cause?.message)).toMatch(
      new RegExp(`partitions of ${table} changed during the backfill \\(attached: public.${name}_b\\)`),
    );
  });
  // every row at most once: the run stopped, it never doubled a row
  const d = await distribution(pool, table);
  expect(Object.keys(d).every((n) => n === '0' || n === '1')).toBe(true);

  const hashed = unique('hashed');
  await pool.query(
    `CREATE TABLE public."${hashed}" (id bigint NOT NULL, n int NOT NULL DEFAULT 0, PRIMARY KEY (id)) PARTITION BY HASH (id)`,
  );
  for (let i = 0; i < 3; i++)
    await pool.query(`CREATE TABLE public."${hashed}_${i}" PARTITION OF public."${hashed}" FOR VALUES WITH (MODULUS 3, REMAINDER ${i})`);
  await pool.query(`INSERT INTO public."${hashed}" (id) SELECT generate_series(1, 3000)`);
  const plan = await printPlan(keySpec(`public.${hashed}`, 'id', 'id >= :lo AND id < :hi'), 'text');
  expect(plan).toMatch(/refused: key: rows of other partitions of public\.\S+ lie between the keys/);
});

test('a key with no btree order, a missing column and a duplicate run longer than a chunk are refused with the field and the reason', async () => {
  const name = unique('nokey');
  const table = `public.${name}`;
  await pool.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, p point, grp int NOT NULL, n int NOT NULL DEFAULT 0)`);
  await pool.query(`CREATE INDEX ON ${table} (grp)`);
  await pool.query(
    `INSERT INTO ${table} (id, p, grp) SELECT g, point(g, g), CASE WHEN g <= 1500 THEN 1 ELSE g END FROM generate_series(1, 3000) g`,
  );
  await pool.query(`ANALYZE ${table}`);
  expect(await printPlan(keySpec(table, 'p', 'p >= :lo AND p < :hi'), 'text')).toMatch(
    /refused: key: column "p" of \S+ is point, which has no default btree operator class/,
  );
  expect(await printPlan(keySpec(table, ['grp', 'nope'], '(grp, nope) >= :lo AND (grp, nope) < :hi'), 'text')).toMatch(
    /refused: key: column "nope" does not exist/,
  );

  // start refuses it the same way, before any chunk
  const refused = await runBackfill(keySpec(table, 'p', 'p >= :lo AND p < :hi')).catch((e) => e);
  expect(refused).toBeInstanceOf(WorkflowFailedError);
  expect(String(refused.cause?.message)).toMatch(/^key: column "p" of \S+ is point, which has no default btree operator class/);

  const s = keySpec(table, 'grp', 'grp >= :lo AND grp < :hi', { chunkSize: 1000 });
  const err = await runBackfill(s).catch((e) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect(String(err.cause?.message)).toMatch(/key: more than 1000 rows share the key value 1 of \S+, .*key: \[grp, id\]/);
  // nothing ran over its size: the refused chunk rolled back whole
  expect((await distribution(pool, table))['0']).toBeGreaterThanOrEqual(1500);
});

test('replay --from/--to on a composite key takes tuples and re-runs exactly the chunks that cover them', async () => {
  const name = unique('tenreplay');
  const table = `public.${name}`;
  await pool.query(
    `CREATE TABLE ${table} (tenant_id int NOT NULL, id bigint NOT NULL, n int NOT NULL DEFAULT 0, PRIMARY KEY (tenant_id, id))`,
  );
  await pool.query(`INSERT INTO ${table} (tenant_id, id) SELECT 1 + g % 4, g FROM generate_series(1, 20000) g`);
  await pool.query(`ANALYZE ${table}`);
  const s = keySpec(table, ['tenant_id', 'id'], '(tenant_id, id) >= :lo AND (tenant_id, id) < :hi', { chunkSize: 1000 });
  await withWorker(async (taskQueue) => {
    await (await startRun(taskQueue, s)).result();
    const conn = connectionFor(client, taskQueue);
    const run = await replayBackfill(conn, env().databaseUrl, s.name, { from: '(2, 100)', to: '(2, 9000)' });
    const result = await client.workflow.getHandle(run.workflowId).result();
    expect(result.state).toBe('completed');
  });
  // every row of the range ran twice, and only whole recorded chunks around it did
  const inRange = await pool.query(
    `SELECT min(n) AS lo, max(n) AS hi FROM ${table} WHERE (tenant_id, id) >= (2, 100) AND (tenant_id, id) < (2, 9000)`,
  );
  expect(inRange.rows[0]).toEqual({ lo: 2, hi: 2 });
  const outside = await pool.query(
    `SELECT count(*)::int AS c FROM ${table} WHERE n = 2 AND NOT ((tenant_id, id) >= (2, 100) AND (tenant_id, id) < (2, 9000))`,
  );
  expect(outside.rows[0].c).toBeLessThan(2 * 1000);
  expect((await distribution(pool, table))['1']).toBeGreaterThan(15_000);
  // the new generation's range reads as tuples in history
  const history = formatHistory(await readHistory(pool, backfillWorkflowId(s.table, s.name)));
  expect(history).toMatch(/generation 2 \(replay, .*\): range \[\(2, 100\), \(2, 9000\)\)/);
});
