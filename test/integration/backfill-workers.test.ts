import { startBackfill } from '../../client/operations';
import { spawnWorker, exited, unique, makeCounterTable, waitFor, pool, client, useStack } from './harness';
import { counterSpec, distribution, checkpointChain, connectionFor } from './backfill-checks';
import { recordFacts } from './report';

// Needs dist/ (`npx tsc -p tsconfig.build.json`): the workers are real processes.
jest.setTimeout(150_000);

useStack();

test('a second worker process on the same task queue takes a share of the work; every row once', async () => {
  const table = await makeCounterTable(pool, unique('t'), 60_000);
  const s = counterSpec(table, { chunkSize: 1000, parallelism: 4, throttle: { maxRowsPerSecond: 12_000 } });
  const taskQueue = unique('q');
  const workers = [spawnWorker(taskQueue, { LOG_LEVEL: 'info' }), spawnWorker(taskQueue, { LOG_LEVEL: 'info' })];
  try {
    for (const w of workers) await waitFor('worker polling', async () => w.output().includes('worker started'), 60_000);
    // short leases: many activity tasks for the two workers' pollers to share
    const { workflowId } = await startBackfill(connectionFor(client, taskQueue), s, { leaseMs: 500 });
    const result = await client.workflow.getHandle(workflowId).result();
    expect(result.state).toBe('completed');
    expect(await distribution(pool, table)).toEqual({ '1': 60_000 });
    const chain = await checkpointChain(pool, table, s.name);
    expect(chain.problems).toEqual([]);
    const byWorker = new Map<string, number>();
    for (const c of chain.checkpoints) byWorker.set(c.worker ?? '?', (byWorker.get(c.worker ?? '?') ?? 0) + 1);
    const pids = workers.map((w) => String(w.pid));
    expect([...byWorker.keys()].map((k) => k.split(':').pop()).sort()).toEqual(pids.sort());
    recordFacts('two worker processes on one task queue', {
      rows: 60_000,
      chunksPerWorker: [...byWorker.values()].join('/'),
      rowsChangedTwice: 0,
    });
  } finally {
    for (const w of workers) {
      w.kill('SIGKILL');
      await exited(w);
    }
  }
});
