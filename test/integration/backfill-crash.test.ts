import { backfillWorkflow } from '../../workflows/backfill/workflow';
import { backfillWorkflowId } from '../../core/common/ids';
import { spawnWorker, exited, unique, makeCounterTable, pool, client, useStack } from './harness';
import { counterSpec, distribution, checkpointChain, runWithKills } from './backfill-checks';
import { recordFacts } from './report';

// Needs dist/ (`npx tsc -p tsconfig.build.json`): the worker is a real process so SIGKILL is real.
jest.setTimeout(240_000);

useStack();

test('1M rows, n = n + 1, the worker process SIGKILLed 4 times at random points: every row once, one checkpoint per chunk', async () => {
  const total = 1_000_000;
  const started = Date.now();
  const table = await makeCounterTable(pool, unique('big'), total);
  // throttled so the run outlasts four kills and restarts, however fast the chunk path gets
  const s = counterSpec(table, { chunkSize: 2000, parallelism: 4, throttle: { maxRowsPerSecond: 25_000 } });
  const { result, kills } = await runWithKills({ pool, client }, s, { total, kills: 4, spreadMs: 8000 });
  const chain = await checkpointChain(pool, table, s.name);
  process.stderr.write(
    `[crash] ${total} rows, ${kills.length} SIGKILLs at ${kills.map((k) => k.rowsDoneAtKill).join(', ')} rows done; ` +
      `${chain.chunks} chunks over ${chain.partitions} partitions; ${((Date.now() - started) / 1000).toFixed(1)}s total\n`,
  );

  expect(kills.length).toBeGreaterThanOrEqual(3);
  expect(result.state).toBe('completed');
  expect(await distribution(pool, table)).toEqual({ '1': total });
  expect(chain.problems).toEqual([]);
  expect(chain.rows).toBe(total);
  expect(result.rowsProcessed).toBe(total);
  expect(result.chunksDone).toBe(chain.chunks);
  recordFacts('1M-row backfill, worker process SIGKILLed at random points', {
    rows: total,
    kills: kills.length,
    chunks: chain.chunks,
    partitions: chain.partitions,
    rowsChangedTwice: 0,
    checkpointGapsOrOverlaps: 0,
    seconds: Math.round((Date.now() - started) / 1000),
  });
});

// Minutes of work on a small machine, so only on request: STAGEFILL_SCALE_TEST=1.
(process.env.STAGEFILL_SCALE_TEST === '1' ? test : test.skip)(
  '10M rows in 1,000-row chunks run to the end with a history of a few hundred events',
  async () => {
    const total = 10_000_000;
    const started = Date.now();
    const table = await makeCounterTable(pool, unique('huge'), total);
    const loadedMs = Date.now() - started;
    const s = counterSpec(table, { chunkSize: 1000, parallelism: 4 });
    const taskQueue = unique('q');
    const worker = spawnWorker(taskQueue);
    try {
      const workflowId = backfillWorkflowId(s.table, s.name);
      const handle = await client.workflow.start(backfillWorkflow, { taskQueue, workflowId, args: [{ spec: s }] });
      const result = await handle.result();
      const backfillMs = Date.now() - started - loadedMs;
      let runs = 0;
      let events = 0;
      let runId: string | undefined = handle.firstExecutionRunId;
      while (runId) {
        const h = await client.workflow.getHandle(workflowId, runId).fetchHistory();
        runs++;
        events += h.events!.length;
        runId = h.events![h.events!.length - 1]!.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
      }
      const chain = await checkpointChain(pool, table, s.name);
      process.stderr.write(
        `[scale] ${total} rows: loaded in ${(loadedMs / 1000).toFixed(0)}s, backfilled in ${(backfillMs / 1000).toFixed(0)}s; ${chain.chunks} chunks, ${runs} runs, ${events} history events\n`,
      );
      expect(result.state).toBe('completed');
      expect(result.rowsProcessed).toBe(total);
      expect(chain.problems).toEqual([]);
      expect(await distribution(pool, table)).toEqual({ '1': total });
      recordFacts('10M rows in 1,000-row chunks', {
        rows: total,
        chunks: chain.chunks,
        continueAsNewRuns: runs,
        historyEvents: events,
        backfillSeconds: Math.round(backfillMs / 1000),
      });
    } finally {
      worker.kill('SIGKILL');
      await exited(worker);
      await pool.query(`DROP TABLE ${table}`);
    }
  },
  1_800_000,
);
