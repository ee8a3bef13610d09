import { Client as PgClient } from 'pg';
import { WorkflowFailedError, WorkflowUpdateFailedError, CancelledFailure } from '@temporalio/client';
import { setThrottleUpdate } from '../../workflows/definitions';
import { SA } from '../../workflows/search-attributes';
import { env, unique, makeCounterTable, waitFor, sleep, pool, client, useStack, afterThisTest } from './harness';
import { counterSpec, distribution, checkpointChain, rowsAgainstCheckpoints, progressOf, makeHealthTable } from './backfill-checks';
import { withWorker, startRun, startThroughClient, slowChunkSpec, expectCompletedOnce } from './backfill-harness';
import { recordFacts } from './report';
import type { ThrottleSettings } from '../../core/backfill/throttle';

jest.setTimeout(150_000);

useStack();

async function events(
  workflowId: string,
  event: string,
): Promise<{ subject: string; detail: { retry: number; backoffMs: number }; at: Date }[]> {
  const { rows } = await pool.query('SELECT subject, detail, at FROM stagefill.events WHERE workflow_id = $1 AND event = $2 ORDER BY id', [
    workflowId,
    event,
  ]);
  return rows;
}

test('cancel stops after the in-flight chunks commit: state cancelled, changed rows are exactly the checkpointed ones', async () => {
  const table = await makeCounterTable(pool, unique('t'), 20_000);
  // each chunk sleeps a little inside its transaction, so chunks are in flight when the cancel lands
  const s = slowChunkSpec(table, 250, 0.05);
  await withWorker(async (taskQueue) => {
    const { workflowId, handle } = await startThroughClient(taskQueue, s, { leaseMs: 2000 });
    await waitFor('some chunks', async () => (await progressOf(client, workflowId)).rowsProcessed >= 1000);
    await handle.cancel();
    const err = await handle.result().catch((e) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(err.cause).toBeInstanceOf(CancelledFailure);

    const desc = await handle.describe();
    expect(desc.status.name).toBe('CANCELLED');
    expect(desc.typedSearchAttributes.get(SA.state)).toBe('cancelled');
    const row = await pool.query('SELECT state FROM stagefill.backfills WHERE table_name = $1 AND name = $2', [table, s.name]);
    expect(row.rows[0].state).toBe('cancelled');

    // nothing commits after the workflow closed: it waited for the chunks in flight
    const chain = await checkpointChain(pool, table, s.name, { complete: false });
    const lastCommit = Math.max(...chain.checkpoints.map((c) => c.committed_at.getTime()));
    expect(lastCommit).toBeLessThanOrEqual(desc.closeTime!.getTime());
    await sleep(1500);
    expect((await checkpointChain(pool, table, s.name, { complete: false })).chunks).toBe(chain.chunks);

    expect(chain.problems).toEqual([]);
    expect(chain.rows).toBeGreaterThanOrEqual(1000);
    expect(chain.rows).toBeLessThan(20_000);
    const d = await distribution(pool, table);
    expect(d).toEqual({ '0': 20_000 - chain.rows, '1': chain.rows });
    expect(await rowsAgainstCheckpoints(pool, table, chain.backfillId, chain.generation)).toEqual({
      changedOutside: 0,
      unchangedInside: 0,
    });
    recordFacts('backfill cancelled mid-run', {
      rowsCommitted: chain.rows,
      rowsUntouched: 20_000 - chain.rows,
      halfAppliedChunks: 0,
      commitsAfterClose: 0,
    });
  });
});

test('rows locked by another session: the chunk hits lock_timeout, backs off and retries, and completes once the lock is released', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10_000);
  const s = counterSpec(table, { chunkSize: 500, parallelism: 1, lockTimeoutMs: 200 });
  const live = new PgClient({ connectionString: env().databaseUrl });
  await live.connect();
  afterThisTest(() => live.end());
  await withWorker(async (taskQueue) => {
    // live traffic: a transaction holding row locks in the middle of the table
    await live.query('BEGIN');
    await live.query(`SELECT id FROM ${table} WHERE id BETWEEN 5001 AND 5050 FOR UPDATE`);
    const { workflowId, handle } = await startThroughClient(taskQueue, s, { leaseMs: 1000 });
    const timeouts = await waitFor('two lock timeouts', async () => {
      const e = await events(workflowId, 'lock_timeout');
      return e.length >= 2 && e;
    });
    expect(timeouts[1]!.detail.backoffMs).toBeGreaterThan(timeouts[0]!.detail.backoffMs);
    const held = await progressOf(client, workflowId);
    expect(held.state).toBe('running');
    expect((await distribution(pool, table))['1'] ?? 0).toBeLessThan(10_000);
    // the live transaction was never blocked by the backfill: it still holds its locks and can write
    await live.query(`UPDATE ${table} SET v = v WHERE id = 5001`);
    await live.query('COMMIT');

    const { chain } = await expectCompletedOnce(handle, table, s.name, 10_000);
    expect(chain.rows).toBe(10_000);
    const all = await events(workflowId, 'lock_timeout');
    recordFacts('rows locked by live traffic during a backfill', {
      lockTimeouts: all.length,
      backoffsMs: all.map((t) => t.detail.backoffMs).join('/'),
      rows: 10_000,
      rowsChangedTwice: 0,
    });
  });
});

test('setThrottle changes the chunk size mid-run; bad payloads are rejected by the validator and the run continues; search attributes and memo are visible', async () => {
  const table = await makeCounterTable(pool, unique('t'), 40_000);
  const s = counterSpec(table, { chunkSize: 500, throttle: { maxRowsPerSecond: 4000 } });
  await withWorker(async (taskQueue) => {
    const { workflowId, handle } = await startThroughClient(taskQueue, s, { leaseMs: 500, actor: 'jest' });
    await waitFor('some chunks', async () => (await progressOf(client, workflowId)).chunksDone >= 4);

    const desc = await handle.describe();
    expect(desc.typedSearchAttributes.get(SA.kind)).toBe('backfill');
    expect(desc.typedSearchAttributes.get(SA.state)).toBe('running');
    expect(desc.typedSearchAttributes.get(SA.tables)).toEqual([table]);
    expect(desc.typedSearchAttributes.get(SA.name)).toBe(s.name);
    const memo = desc.memo as { summary: Record<string, unknown>; startedBy: string };
    expect(memo.startedBy).toBe('jest');
    expect(memo.summary).toMatchObject({
      kind: 'backfill',
      name: s.name,
      table,
      key: 'id',
      chunkSize: 500,
      generation: 1,
      rowsTotal: 40_000,
    });
    expect(memo.summary.transformHash).toMatch(/^[0-9a-f]{16}$/);

    for (const [bad, field] of [
      [{ chunkSize: -5 }, /setThrottle\.chunkSize: expected an integer from 1/],
      [{ chunkSise: 2000 }, /unknown field "chunkSise"/],
      [{ maxRowsPerSecond: 0 }, /setThrottle\.maxRowsPerSecond: expected a positive number/],
    ] as const) {
      const err = await handle.executeUpdate(setThrottleUpdate, { args: [bad as never] }).catch((e) => e);
      expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
      expect(String(err.cause?.message)).toMatch(field);
    }
    const settings: ThrottleSettings = await handle.executeUpdate(setThrottleUpdate, {
      args: [{ chunkSize: 2000, maxRowsPerSecond: null }],
    });
    expect(settings.chunkSize).toBe(2000);
    expect(settings.maxRowsPerSecond).toBeUndefined();

    const { chain } = await expectCompletedOnce(handle, table, s.name, 40_000);
    // per partition, sizes go 500 ... 500, 2000 ... 2000 (the last chunk of a partition may be short)
    const sizes = new Set(chain.checkpoints.map((c) => c.rows));
    expect(sizes.has(500)).toBe(true);
    expect(sizes.has(2000)).toBe(true);
    for (let p = 0; p < chain.partitions; p++) {
      const rows = chain.checkpoints
        .filter((c) => c.partition_no === p)
        .map((c) => c.rows)
        .slice(0, -1);
      const firstBig = rows.indexOf(2000);
      if (firstBig >= 0) expect(rows.slice(firstBig).every((r) => r === 2000)).toBe(true);
    }
    const after = await handle.describe();
    expect(after.typedSearchAttributes.get(SA.state)).toBe('completed');

    // rejected updates never reached history; the accepted one did
    const history = await handle.fetchHistory();
    const accepted = history.events!.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
    expect(accepted).toHaveLength(1);
  });
});

test('maxRowsPerSecond holds the rate down: 6,000 rows at 3,000 rows/s take at least ~1.6s of commits', async () => {
  const table = await makeCounterTable(pool, unique('t'), 6_000);
  const s = counterSpec(table, { chunkSize: 500, parallelism: 2, throttle: { maxRowsPerSecond: 3000 } });
  await withWorker(async (taskQueue) => {
    const { handle } = await startThroughClient(taskQueue, s);
    const { chain } = await expectCompletedOnce(handle, table, s.name, 6_000);
    const times = chain.checkpoints.map((c) => c.committed_at.getTime());
    // each lane gets 1,500 rows/s: its 6th chunk may start no earlier than 5 x 500 / 1,500 s after its first
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(1400);
  });
});

test('continue-as-new keeps the cursor and counters: a backfill over several runs applies every row once', async () => {
  const table = await makeCounterTable(pool, unique('t'), 8_000);
  const s = counterSpec(table, { chunkSize: 200, parallelism: 2 });
  await withWorker(async (taskQueue) => {
    // one chunk per lease and a new run every ~60 events
    const runs = await startRun(taskQueue, s, { leaseMs: 1, maxHistoryEvents: 60 });
    const workflowId = runs.workflowId;
    const { result, chain } = await expectCompletedOnce(runs, table, s.name, 8_000);
    expect(result.rowsProcessed).toBe(8_000);
    const first = await client.workflow.getHandle(workflowId, runs.firstExecutionRunId).fetchHistory();
    expect(first.events![first.events!.length - 1]!.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    expect(result.chunksDone).toBe(chain.chunks);
  });
});

test('the health probe over its threshold holds the backfill back; it goes on once the probe recovers', async () => {
  const table = await makeCounterTable(pool, unique('t'), 5_000);
  const health = await makeHealthTable(pool, 30);
  const s = counterSpec(table, {
    chunkSize: 500,
    throttle: { healthCheck: { sql: `SELECT lag FROM ${health}`, max: 5, every: '100ms', backoff: '200ms' } },
  });
  await withWorker(async (taskQueue) => {
    const { workflowId, handle } = await startThroughClient(taskQueue, s, { leaseMs: 500 });
    // a replica "lags" 30s: leases probe, back off, and commit nothing
    const held = await waitFor('backing off', async () => {
      const p = await progressOf(client, workflowId);
      return p.throttleWaitMs >= 1000 && p;
    });
    expect(held.rowsProcessed).toBe(0);
    expect(await distribution(pool, table)).toEqual({ '0': 5_000 });
    await pool.query(`UPDATE ${health} SET lag = 0`);
    const result = await handle.result();
    expect(result.state).toBe('completed');
    expect(await distribution(pool, table)).toEqual({ '1': 5_000 });
  });
});

test('a failed per-chunk check stops the backfill naming the chunk; that chunk rolls back, earlier ones stay', async () => {
  const table = await makeCounterTable(pool, unique('t'), 6_000);
  const s = counterSpec(table, {
    chunkSize: 1000,
    parallelism: 1,
    validate: [{ name: 'no row 4321', sql: `SELECT count(*) FROM ${table} WHERE id >= :lo AND id < :hi AND v = 4321`, expect: { eq: 0 } }],
  });
  await withWorker(async (taskQueue) => {
    const { handle } = await startThroughClient(taskQueue, s);
    const err = await handle.result().catch((e) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(String(err.cause?.message)).toMatch(/^chunk \[\d+, \d+\) failed check "no row 4321": got 1, expected = 0/);
    const [, lo, hi] = /chunk \[(\d+), (\d+)\)/.exec(err.cause.message)!.map(Number);
    expect(lo).toBeLessThanOrEqual(4321);
    expect(hi).toBeGreaterThan(4321);
    const inFailed = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE id >= $1 AND id < $2 AND n <> 0`, [lo, hi]);
    expect(inFailed.rows[0].n).toBe(0);
    const chain = await checkpointChain(pool, table, s.name, { complete: false });
    expect(chain.problems).toEqual([]);
    expect(chain.rows).toBeGreaterThanOrEqual(3000); // the partitions before it, committed
    expect(chain.checkpoints.some((c) => Number(c.lo) <= 4321 && 4321 < Number(c.hi))).toBe(false);
    expect(await rowsAgainstCheckpoints(pool, table, chain.backfillId, chain.generation)).toEqual({
      changedOutside: 0,
      unchangedInside: 0,
    });
  });
});

test('targetChunkMs grows fast chunks toward the target, never past maxChunkSize', async () => {
  const table = await makeCounterTable(pool, unique('t'), 20_000);
  const s = counterSpec(table, { chunkSize: 100, parallelism: 1, throttle: { targetChunkMs: 250, maxChunkSize: 1600 } });
  await withWorker(async (taskQueue) => {
    const { handle } = await startThroughClient(taskQueue, s);
    const { chain } = await expectCompletedOnce(handle, table, s.name, 20_000);
    const sizes = chain.checkpoints.map((c) => c.rows);
    expect(Math.max(...sizes)).toBeGreaterThan(100);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1600);
  });
});
