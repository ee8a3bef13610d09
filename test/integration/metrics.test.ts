import { connect } from '../../client/connection';
import { startBackfill, getProgress, waitForRun } from '../../client/operations';
import { freePort } from '../../devstack/ports';
import { createMetrics, backlogFromPool } from '../../worker/metrics';
import { createStagefillWorker } from '../../worker/run';
import { loadWorkerConfig } from '../../worker/config';
import { pool, conn, taskQueue, useStack, unique, makeCounterTable, waitFor, env, spawnWorker, exited, sleep, testLogger } from './harness';
import { counterSpec } from './backfill-checks';

jest.setTimeout(180_000);

useStack({ connection: true, queue: 'metricsq' });

/** The value of one series in Prometheus' text format, or undefined when it is absent. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inside = line.slice(name.length + 1, line.indexOf('}'));
    if (want.every((w) => inside.split(',').includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

test('a worker with STAGEFILL_METRICS_PORT serves rows processed rising during a backfill, beside the SDK metrics', async () => {
  const port = await freePort();
  const worker = spawnWorker(taskQueue, { STAGEFILL_METRICS_PORT: String(port) });
  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  };
  try {
    const rows = 15_000;
    const table = await makeCounterTable(pool, unique('t'), rows);
    const spec = counterSpec(table, { chunkSize: 250, throttle: { maxRowsPerSecond: 2500 } });
    const labels = { kind: 'backfill', table };
    await waitFor('the metrics port', async () => (await scrape()).includes('stagefill_rows_processed_total'), 60_000);
    const run = await startBackfill(conn, spec, { leaseMs: 1000 });

    await waitFor('rows in the counter', async () => (sample(await scrape(), 'stagefill_rows_processed_total', labels) ?? 0) > 0, 60_000);
    const first = await scrape();
    const before = sample(first, 'stagefill_rows_processed_total', labels)!;
    await sleep(1500);
    const second = await scrape();
    const after = sample(second, 'stagefill_rows_processed_total', labels)!;
    expect(after).toBeGreaterThan(before); // rising while the backfill runs
    expect(((await getProgress(conn, run.workflowId)) as { state: string }).state).toBe('running');
    expect(after).toBeLessThan(rows);

    // stagefill's own families, labelled by kind and table
    expect(sample(second, 'stagefill_chunks_committed_total', labels)).toBeGreaterThan(0);
    expect(sample(second, 'stagefill_chunk_duration_seconds_count', labels)).toBeGreaterThan(0);
    expect(second).toMatch(/^# TYPE stagefill_chunk_duration_seconds histogram$/m);
    expect(sample(second, 'stagefill_throttle_wait_seconds_total', labels)).toBeGreaterThan(0); // the rate limit made chunks wait
    // the SDK's own Runtime metrics, merged into the same page
    expect(second).toMatch(/^temporal_\w+/m);
    expect(second).toMatch(/^temporal_activity_execution_latency\w*\{/m);

    await waitForRun(conn, run.workflowId);
    // every committed chunk counted once: the counter ends at the table's size
    expect(sample(await scrape(), 'stagefill_rows_processed_total', labels)).toBe(rows);
  } finally {
    worker.kill('SIGTERM');
  }
  expect(await exited(worker)).toBe(0);
});

test("the backlog gauges read stagefill's tables at scrape time: rows remaining fall while it runs, and a finished backfill drops out", async () => {
  const q = unique('backlogq');
  const metrics = createMetrics();
  metrics.setBacklogSource(backlogFromPool(pool));
  const e = env();
  const config = loadWorkerConfig({
    TEMPORAL_ADDRESS: e.address,
    TEMPORAL_NAMESPACE: e.namespace,
    DATABASE_URL: e.databaseUrl,
    STAGEFILL_TASK_QUEUE: q,
  });
  const sw = await createStagefillWorker({ config, logger: testLogger, workflowBundlePath: e.bundle, metrics });
  const running = sw.run();
  const c = await connect({ address: e.address, namespace: e.namespace, taskQueue: q });
  try {
    const rows = 8_000;
    const table = await makeCounterTable(pool, unique('t'), rows);
    const name = unique('bf');
    const spec = counterSpec(table, { name, chunkSize: 250, throttle: { maxRowsPerSecond: 2000 } });
    const labels = { kind: 'backfill', table, name, state: 'running' };
    const run = await startBackfill(c, spec, { leaseMs: 1000 });
    const first = await waitFor('a backlog below the total', async () => {
      const v = sample(await metrics.registry.metrics(), 'stagefill_backfill_rows_remaining', labels);
      return v !== undefined && v < rows && v;
    });
    const text = await metrics.registry.metrics();
    expect(sample(text, 'stagefill_backfill_rows_planned', labels)).toBe(rows);
    await sleep(1500);
    expect(sample(await metrics.registry.metrics(), 'stagefill_backfill_rows_remaining', labels)).toBeLessThan(first);
    await waitForRun(c, run.workflowId);
    await sleep(1100); // past the one-scrape cache
    expect(
      sample(await metrics.registry.metrics(), 'stagefill_backfill_rows_remaining', { kind: 'backfill', table, name }),
    ).toBeUndefined();
  } finally {
    await c.close();
    sw.shutdown();
    await running;
  }
});
