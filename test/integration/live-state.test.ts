import type { RolloutProgress } from '../../workflows/definitions';
import { retrySignal } from '../../workflows/definitions';
import { SA } from '../../workflows/search-attributes';
import { startBackfill } from '../../client/operations';
import { unique, makeCounterTable, waitFor, pool, client, useStack } from './harness';
import { counterSpec, makeHealthTable, distribution, progressOf as backfillProgressOf, connectionFor } from './backfill-checks';
import { progressOf, outcome } from './rollout-harness';
import { ownWorker, rolloutOnOwnWorker, waitForState } from './own-worker';
import { runCli, cliEnv } from './cli-harness';
import { recordFacts } from './report';

jest.setTimeout(120_000);

useStack();

test("a rollout's percentage and ETA move while its backfill runs: between the values before and after it, rising", async () => {
  const table = await makeCounterTable(pool, unique('t'), 20_000);
  const { handle } = await rolloutOnOwnWorker({
    name: unique('pct'),
    table,
    steps: [
      // ~20 s at 1,000 rows/s: the backfill reports every few seconds and whole percent
      {
        kind: 'addColumn',
        column: 'n2',
        type: 'int',
        up: 'n + 1',
        backfill: { chunkSize: 200, parallelism: 1, throttle: { maxRowsPerSecond: 1000 } },
      },
      { kind: 'gate', checks: [{ name: 'all filled', sql: `SELECT count(*) FROM ${table} WHERE n2 IS NULL`, expect: { eq: 0 } }] },
    ],
  });
  // two steps: 0% before the backfill, 50% once its step completed
  const seen: RolloutProgress[] = [];
  await waitFor(
    'two percentages over 0 while the backfill runs',
    async () => {
      const p = await progressOf(handle);
      if (p.steps[0]!.state === 'running' && p.backfills.length && (!seen.length || p.percent !== seen[seen.length - 1]!.percent))
        seen.push(p);
      return seen.filter((x) => x.percent > 0).length >= 2;
    },
    60_000,
    250,
  );
  for (const p of seen) {
    expect(p.percent).toBeGreaterThanOrEqual(0);
    expect(p.percent).toBeLessThan(50);
    expect(p.backfills[0]!.state).toBe('running');
    expect(p.backfills[0]!.rowsTotal).toBeGreaterThan(0);
  }
  const [first, second] = seen.filter((x) => x.percent > 0);
  expect(second!.percent).toBeGreaterThan(first!.percent);
  expect(second!.backfills[0]!.rowsDone).toBeGreaterThan(first!.backfills[0]!.rowsDone);
  expect(second!.etaSeconds).toEqual(expect.any(Number));
  expect(second!.etaSeconds!).toBeGreaterThan(0);

  expect((await outcome(handle)).state).toBe('completed');
  const done = await progressOf(handle);
  expect(done).toMatchObject({ percent: 100, etaSeconds: 0, backfills: [], lastError: null });
  recordFacts('rollout percentage during its backfill', {
    percents: seen.map((p) => p.percent).join(' -> '),
    etaSeconds: second!.etaSeconds ?? -1,
  });
});

test('a backfill backing off on its health check says so in `status --json`, the progress query, the search attribute and metrics; then running again', async () => {
  const table = await makeCounterTable(pool, unique('t'), 5_000);
  const health = await makeHealthTable(pool, 30);
  const s = counterSpec(table, {
    chunkSize: 250,
    parallelism: 1,
    throttle: { maxRowsPerSecond: 1000, healthCheck: { sql: `SELECT lag FROM ${health}`, max: 5, every: '100ms', backoff: '200ms' } },
  });
  const { taskQueue, w } = await ownWorker();
  const { workflowId } = await startBackfill(connectionFor(client, taskQueue), s, { leaseMs: 500 });
  const off = await waitFor('backing off', async () => {
    const p = await backfillProgressOf(client, workflowId);
    return p.state === 'backing_off' && p;
  });
  expect(off.stateReason).toBe('health check returned 30, over its max of 5: backing off 200 ms at a time');
  expect(off.health).toMatchObject({ value: 30, max: 5, isOver: true });
  expect(off.rowsProcessed).toBe(0);
  const status = await runCli(['status', workflowId, '--json'], cliEnv(taskQueue));
  expect(status.code).toBe(0);
  expect(JSON.parse(status.stdout)).toMatchObject({ state: 'backing_off', stateReason: off.stateReason, workflowStatus: 'RUNNING' });
  expect((await client.workflow.getHandle(workflowId).describe()).typedSearchAttributes.get(SA.state)).toBe('backing_off');
  const series = (await w.sw.metrics.registry.metrics())
    .split('\n')
    .find((l) => l.startsWith(`stagefill_health_backoff_seconds_total{kind="backfill",table="${table}"}`));
  expect(Number(series?.split(' ')[1])).toBeGreaterThan(0);

  await pool.query(`UPDATE ${health} SET lag = 0`);
  const back = await waitFor('running again', async () => {
    const p = await backfillProgressOf(client, workflowId);
    return p.state === 'running' && p.rowsProcessed > 0 && p;
  });
  expect(back.stateReason).toBeNull();
  expect((await client.workflow.getHandle(workflowId).describe()).typedSearchAttributes.get(SA.state)).toBe('running');
  const result = await client.workflow.getHandle(workflowId).result();
  expect(result.state).toBe('completed');
  expect(await distribution(pool, table)).toEqual({ '1': 5_000 });
});

test('a rollout held on a failing gate, retried and completed, shows no stale error: the gate failure is a recovered one', async () => {
  const table = await makeCounterTable(pool, unique('t'), 100);
  const { handle } = await rolloutOnOwnWorker({
    name: unique('recover'),
    table,
    steps: [
      {
        kind: 'gate',
        onFailure: 'pause',
        checks: [{ name: 'all counted', sql: `SELECT count(*) FROM ${table} WHERE n = 0`, expect: { eq: 0 } }],
      },
    ],
  });
  const held = await waitForState(handle, 'held');
  expect(held.lastError).toMatch(/check "all counted" got 100/);
  expect(held.lastRecoveredError).toBeNull();

  await pool.query(`UPDATE ${table} SET n = 1`);
  await handle.signal(retrySignal, { by: 'test' });
  expect((await outcome(handle)).state).toBe('completed');
  const done = await progressOf(handle);
  expect(done.lastError).toBeNull();
  expect(done.lastRecoveredError).toBe(held.lastError);
  expect(done.steps[0]).toMatchObject({ state: 'completed' });
  expect(done.steps[0]!.error).toBeUndefined();
});
