import { startWorker, unique, makeCounterTable, pool, client, useStack } from './harness';
import { cliEnv, runCli, tempDir, writeSpec, counterBackfill } from './cli-harness';
import { makeOrders } from './rollout-harness';

jest.setTimeout(180_000);

useStack();

async function runsNamed(name: string): Promise<number> {
  let n = 0;
  for await (const wf of client.workflow.list({ query: `StagefillName = '${name}'` })) if (wf) n++;
  return n;
}

test.each([
  [
    'a cycle',
    [
      { id: 'a', kind: 'sql', apply: 'SELECT 1', revert: 'SELECT 1', dependsOn: ['c'] },
      { id: 'b', kind: 'sql', apply: 'SELECT 1', revert: 'SELECT 1', dependsOn: ['a'] },
      { id: 'c', kind: 'sql', apply: 'SELECT 1', revert: 'SELECT 1', dependsOn: ['b'] },
    ],
    /dependency cycle: (a -> c -> b -> a|b -> a -> c -> b|c -> b -> a -> c)/,
  ],
  [
    'an unknown dependsOn',
    [{ id: 'a', kind: 'sql', apply: 'SELECT 1', revert: 'SELECT 1', dependsOn: ['ghost'] }],
    /step "a" depends on unknown step "ghost"/,
  ],
])('start and plan of a graph with %s exit 2 naming the ids, and start nothing', async (_what, steps, pattern) => {
  const table = await makeOrders(pool, unique('orders'), 10);
  const name = unique('bad-graph');
  const file = writeSpec(tempDir('sf-graph'), { kind: 'rollout', name, table, steps });
  const taskQueue = unique('q');
  for (const verb of ['plan', 'start']) {
    const r = await runCli([verb, file], cliEnv(taskQueue));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).toMatch(/steps\.\d+\.dependsOn/);
  }
  expect(await runsNamed(name)).toBe(0);
});

test('plan --format mermaid prints the graph by table', async () => {
  // tables that exist: with DATABASE_URL set, plan refuses a rollout on a missing table
  const orders = await makeCounterTable(pool, unique('orders'), 1);
  const customers = await makeCounterTable(pool, unique('customers'), 1);
  const file = writeSpec(tempDir('sf-graph'), {
    kind: 'rollout',
    name: unique('mermaid'),
    table: orders,
    steps: [
      { id: 'o', kind: 'addColumn', column: 'c', type: 'int', up: '1', dependsOn: [] },
      { id: 'k', kind: 'addColumn', table: customers, column: 'c', type: 'int', up: '1', dependsOn: [] },
      { id: 'g', kind: 'gate', dependsOn: ['o', 'k'], checks: [{ name: 'x', sql: 'SELECT 0', expect: { eq: 0 } }] },
    ],
  });
  const r = await runCli(['plan', file, '--format', 'mermaid'], cliEnv(unique('q')));
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^graph TD/);
  expect(r.stdout).toContain(`subgraph s_${customers.replace(/[^A-Za-z0-9]/g, '_')}["${customers}"]`);
  expect(r.stdout).toMatch(/s_o --> s_g/);
  expect(r.stdout).toMatch(/s_k --> s_g/);
  const text = await runCli(['plan', file], cliEnv(unique('q')));
  expect(text.stdout).toMatch(/layer 1 \(run together\):/);
});

test('stagefill replay re-runs exactly the chunks over a key range, once', async () => {
  const table = await makeCounterTable(pool, unique('t'), 6_000);
  const taskQueue = unique('q');
  const w = await startWorker(taskQueue);
  try {
    const spec = counterBackfill(table, { chunkSize: 1000, parallelism: 1 });
    const file = writeSpec(tempDir('sf-replay'), spec);
    expect((await runCli(['start', file, '--wait'], cliEnv(taskQueue))).code).toBe(0);
    const r = await runCli(['replay', String(spec.name), '--from', '2001', '--to', '3001', '--wait'], cliEnv(taskQueue));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/:replay:/);
    // exactly the first generation's chunks that overlap [2001, 3001) ran again; no other row moved
    const g1 = await pool.query(
      `SELECT min(c.lo::bigint)::int AS lo, max(c.hi::bigint)::int AS hi FROM stagefill.checkpoints c JOIN stagefill.backfills b ON b.id = c.backfill_id
        WHERE b.name = $1 AND c.generation = 1 AND c.hi::bigint > 2001 AND c.lo::bigint < 3001`,
      [spec.name],
    );
    const { lo, hi } = g1.rows[0];
    expect(lo).toBeLessThanOrEqual(2001);
    expect(hi).toBeGreaterThanOrEqual(3001);
    const counts = await pool.query(
      `SELECT n, min(id)::int AS lo, max(id)::int AS hi, count(*)::int AS c FROM ${table} GROUP BY n ORDER BY n`,
    );
    expect(counts.rows).toEqual([
      { n: 1, lo: 1, hi: 6000, c: 6000 - (hi - lo) },
      { n: 2, lo, hi: hi - 1, c: hi - lo },
    ]);
    const missing = await runCli(['replay', 'no-such-backfill', '--from', '1', '--to', '2'], cliEnv(taskQueue));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no backfill named "no-such-backfill"/);
  } finally {
    await w.stop();
  }
});
