import { WorkflowFailedError } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { BackfillProgress } from '../../workflows/definitions';
import { progressQuery } from '../../workflows/definitions';
import { backfillWorkflowId } from '../../core/common/ids';
import { counterSpec } from './backfill-checks';
import { env, unique, makeCounterTable, waitFor, sleep, pool, useStack } from './harness';
import { runBackfill, startRun, withWorker } from './backfill-harness';

jest.setTimeout(180_000);

useStack();

async function countCheckpoints(name: string, table: string): Promise<{ chunks: number; rows: number }> {
  const { rows } = await pool.query(
    `SELECT count(*)::int AS chunks, COALESCE(sum(c.rows), 0)::int AS rows
       FROM stagefill.checkpoints c JOIN stagefill.backfills b ON b.id = c.backfill_id AND b.generation = c.generation
      WHERE b.name = $1 AND b.table_name = $2`,
    [name, table],
  );
  return rows[0];
}

async function distribution(table: string): Promise<Record<string, number>> {
  const { rows } = await pool.query(`SELECT n, count(*)::int AS c FROM ${table} GROUP BY n ORDER BY n`);
  return Object.fromEntries(rows.map((r) => [String(r.n), r.c]));
}

test('a non-idempotent transform is applied exactly once per row, with one checkpoint per chunk', async () => {
  const table = await makeCounterTable(pool, unique('t'), 20_000);
  const s = counterSpec(table);
  const result = await runBackfill(s);
  expect(result.state).toBe('completed');
  expect(result.rowsProcessed).toBe(20_000);
  expect(await distribution(table)).toEqual({ '1': 20_000 });
  const cp = await countCheckpoints(s.name, table);
  expect(cp.rows).toBe(20_000);
  expect(cp.chunks).toBe(result.chunksDone);
  expect(cp.chunks).toBeGreaterThanOrEqual(20);
});

test('a lease that fails after its chunk committed is retried without applying the chunk twice', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10_000);
  const s = counterSpec(table);
  let injected = 0;
  const faults = {
    afterChunkCommit: () => {
      if (injected < 5 && Math.random() < 0.3) {
        injected++;
        throw new Error('injected: worker lost after COMMIT, before the activity returned');
      }
    },
  };
  const result = await runBackfill(s, {}, { faults });
  expect(injected).toBeGreaterThan(0);
  expect(result.state).toBe('completed');
  expect(await distribution(table)).toEqual({ '1': 10_000 });
  expect((await countCheckpoints(s.name, table)).rows).toBe(10_000);
});

test('pause from the Temporal CLI stops progress; resume finishes it', async () => {
  const table = await makeCounterTable(pool, unique('t'), 30_000);
  const s = counterSpec(table, { chunkSize: 500, throttle: { maxRowsPerSecond: 3000 } });
  const workflowId = backfillWorkflowId(s.table, s.name);
  // async: the worker runs in this process and must keep answering while the CLI waits
  const temporal = async (...args: string[]) => {
    const { stdout } = await promisify(execFile)(
      env().cli,
      [...args, '--address', env().address, '--namespace', env().namespace, '--workflow-id', workflowId],
      { encoding: 'utf8' },
    );
    return stdout;
  };
  await withWorker(async (taskQueue) => {
    const handle = await startRun(taskQueue, s, { leaseMs: 1000 });
    await waitFor('some progress', async () => ((await handle.query(progressQuery)) as BackfillProgress).rowsProcessed > 0);
    // mid-run, not only between rounds: a rate and an ETA for the UI's Queries tab and `stagefill status`
    const live = (await handle.query(progressQuery)) as BackfillProgress;
    expect(live.rowsPerSecond).toBeGreaterThan(0);
    expect(live.etaSeconds).toEqual(expect.any(Number));
    await temporal('workflow', 'signal', '--name', 'pause');
    await waitFor('paused', async () => ((await handle.query(progressQuery)) as BackfillProgress).state === 'paused');
    // `temporal workflow query --output json` wraps the answer: {"queryResult": [<progress>]}
    const parse = (out: string) => {
      const doc = JSON.parse(out.slice(out.indexOf('{')));
      return (doc.queryResult?.[0] ?? doc) as BackfillProgress;
    };
    const atPause = parse(await temporal('workflow', 'query', '--name', 'progress', '--output', 'json'));
    const dbAtPause = (await countCheckpoints(s.name, table)).rows;
    await sleep(3000);
    const later = parse(await temporal('workflow', 'query', '--name', 'progress', '--output', 'json'));
    expect(later.state).toBe('paused');
    expect(later.rowsProcessed).toBe(atPause.rowsProcessed);
    expect((await countCheckpoints(s.name, table)).rows).toBe(dbAtPause);
    expect(dbAtPause).toBeLessThan(30_000);
    await temporal('workflow', 'signal', '--name', 'resume');
    const result = await handle.result();
    expect(result.state).toBe('completed');
    expect(await distribution(table)).toEqual({ '1': 30_000 });
  });
});

test('a failing chunk stops the backfill with its range and message; a corrected spec continues from the checkpoints', async () => {
  const table = await makeCounterTable(pool, unique('t'), 8_000);
  // a check constraint makes one chunk fail: rows 5001..5100 may not reach n = 1
  await pool.query(`ALTER TABLE ${table} ADD CONSTRAINT no_bump CHECK (n = 0 OR id < 5001 OR id > 5100)`);
  const s = counterSpec(table, { parallelism: 1 });
  await withWorker(async (taskQueue) => {
    const err = await (await startRun(taskQueue, s)).result().catch((e) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const message = String(err.cause?.message);
    expect(message).toMatch(/chunk \[\d+, \d+\) transform failed/);
    expect(message).toMatch(/violates check constraint "no_bump"/);
    const before = await distribution(table);
    expect(before['1']).toBeGreaterThanOrEqual(5000); // earlier chunks stay committed
    expect(before['2']).toBeUndefined();
    const state = await pool.query(`SELECT state, last_error FROM stagefill.backfills WHERE name = $1`, [s.name]);
    expect(state.rows[0].state).toBe('failed');

    // corrected: skip the protected rows instead of failing on them
    const fixed = { ...s, transform: `UPDATE ${table} SET n = n + 1 WHERE id >= :lo AND id < :hi AND (id < 5001 OR id > 5100)` };
    const result = await (await startRun(taskQueue, fixed)).result();
    expect(result.state).toBe('completed');
    expect(result.continued).toBe(true);
    expect(await distribution(table)).toEqual({ '0': 100, '1': 7_900 });
  });
});
