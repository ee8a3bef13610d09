import path from 'node:path';
import type { backfillWorkflow } from '../../workflows/backfill/workflow';
import { startBackfill } from '../../client/operations';
import { ROOT, useStack, unique, pool, client, connectionFor, makeCounterTable, spawnWorker, exited, waitFor } from './harness';
import { counterSpec } from './backfill-checks';

// Needs dist/ (`npm run build`): the worker is a process of its own, its clock skewed by the campaign's preload.
jest.setTimeout(240_000);

useStack();

/**
 * A worker whose wall clock runs behind (a host whose NTP drifted; chaos/clock-skew.ts offsets Date in its Node
 * process, as in `npm run chaos`'s skewed worker). A backfill's deadline (a window's close, `runFor`) is a time of
 * the workflow's clock (the Temporal server's); the lease compared it with the worker's own clock, so a worker ten
 * minutes behind worked its whole lease past the deadline. It now reads the time from the database.
 */
test('a worker whose clock runs ten minutes behind stops its lease at the backfill deadline, not ten minutes later', async () => {
  const table = await makeCounterTable(pool, unique('skew'), 40_000);
  const taskQueue = unique('q');
  const worker = spawnWorker(taskQueue, {
    NODE_OPTIONS: `--require ${path.join(ROOT, 'dist', 'chaos', 'clock-skew.js')}`,
    STAGEFILL_CHAOS_CLOCK_SKEW_MS: String(-10 * 60_000),
    LOG_LEVEL: 'info',
  });
  try {
    await waitFor('the worker polling', async () => worker.output().includes('worker started'), 60_000);
    // the preload took: the worker's log lines carry its clock, ten minutes behind
    const line = worker
      .output()
      .split('\n')
      .find((l) => l.includes('worker started'))!;
    expect(Date.now() - (JSON.parse(line) as { time: number }).time).toBeGreaterThan(9 * 60_000);

    // 40,000 rows at 2,000 rows/s would take 20 s; the run stops after 3 s (its deadline), leases may last 60 s
    const spec = counterSpec(table, { chunkSize: 250, parallelism: 1, throttle: { maxRowsPerSecond: 2000 } });
    const run = await startBackfill(connectionFor(client, taskQueue), spec, { runForMs: 3000, leaseMs: 60_000 });
    const result = await client.workflow.getHandle<typeof backfillWorkflow>(run.workflowId).result();
    expect(result.state).toBe('window_closed');
    const { rows } = await pool.query(
      `SELECT count(*) FILTER (WHERE n = 1)::int AS once, count(*) FILTER (WHERE n > 1)::int AS more FROM ${table}`,
    );
    // ~6,000 rows in 3 s, a chunk or two over at most; the lease that trusted the worker's clock did a whole partition (20,000) past it
    expect(rows[0].more).toBe(0);
    expect(rows[0].once).toBeGreaterThan(0);
    expect(rows[0].once).toBeLessThan(12_000);
  } finally {
    worker.kill('SIGKILL');
    await exited(worker);
  }
});
