import { WorkflowFailedError } from '@temporalio/client';
import type { BackfillResult } from '../../workflows/backfill/workflow';
import { startBackfill } from '../../client/operations';
import { startWorker, unique, makeCounterTable, waitFor, sleep, pool, client, useStack } from './harness';
import { counterSpec, distribution, checkpointChain, progressOf, connectionFor } from './backfill-checks';
import { recordFacts } from './report';

jest.setTimeout(170_000);

useStack();

const DAY_MS = 86_400_000;
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

/**
 * Windows are daily and start on a minute, so the test waits for the next
 * minute M (real time, real durable timers) and uses it twice:
 *  - A: a window that opens at M and lasts 6s: waits before M, works inside, stops at M+6s
 *    and waits for tomorrow's window.
 *  - B: a window that opened yesterday at M and lasts a day minus 8s, i.e. it is closed only in
 *    [M-8s, M): B stops at M-8s and resumes by itself when the next window opens at M.
 */
test('a windowed backfill works only inside its window: stops at the close after the current chunk, resumes when the next window opens', async () => {
  let m = Math.ceil(Date.now() / 60_000) * 60_000;
  if (m - Date.now() < 25_000) m += 60_000;
  const gapMs = 8_000;
  const openMs = 6_000;

  const tableA = await makeCounterTable(pool, unique('wa'), 30_000);
  const tableB = await makeCounterTable(pool, unique('wb'), 40_000);
  const a = counterSpec(tableA, {
    chunkSize: 500,
    throttle: { maxRowsPerSecond: 2000 },
    window: { start: hhmm(m), duration: `${openMs / 1000}s`, timeZone: 'UTC' },
  });
  const b = counterSpec(tableB, {
    chunkSize: 500,
    throttle: { maxRowsPerSecond: 2000 },
    window: { start: hhmm(m), duration: DAY_MS - gapMs, timeZone: 'UTC' },
  });
  const taskQueue = unique('q');
  const w = await startWorker(taskQueue);
  const conn = connectionFor(client, taskQueue);
  try {
    // A, before its window: plans, then waits on a durable timer
    const runA = await startBackfill(conn, a, { leaseMs: 1000 });
    const waitingA = await waitFor('A waiting for its window', async () => {
      const p = await progressOf(client, runA.workflowId);
      return p.state === 'waiting_window' && p;
    });
    expect(waitingA.window).toEqual({ isOpen: false, opensAt: new Date(m).toISOString() });

    // B, started inside its window a few seconds before the close
    await sleep(Math.max(0, m - gapMs - 5_000 - Date.now()));
    const runB = await startBackfill(conn, b, { leaseMs: 1000 });
    await waitFor('B working', async () => (await progressOf(client, runB.workflowId)).rowsProcessed > 0);
    const closedB = await waitFor('B stopped at its window close', async () => {
      const p = await progressOf(client, runB.workflowId);
      return p.state === 'waiting_window' && p;
    });
    expect(closedB.window).toEqual({ isOpen: false, opensAt: new Date(m).toISOString() });
    expect(closedB.rowsProcessed).toBeGreaterThan(0);
    expect(closedB.rowsProcessed).toBeLessThan(40_000);
    const cpA = await pool.query(
      'SELECT count(*)::int AS n FROM stagefill.checkpoints c JOIN stagefill.backfills b ON b.id = c.backfill_id WHERE b.name = $1',
      [a.name],
    );
    expect(cpA.rows[0].n).toBe(0); // A has not touched a row before M

    // B resumes at M by itself and finishes
    const resultB: BackfillResult = await client.workflow.getHandle(runB.workflowId).result();
    expect(resultB.state).toBe('completed');
    expect(await distribution(pool, tableB)).toEqual({ '1': 40_000 });
    const chainB = await checkpointChain(pool, tableB, b.name);
    expect(chainB.problems).toEqual([]);
    const committed = (c: { committed_at: Date }) => c.committed_at.getTime();
    const closeB = m - gapMs;
    const beforeGap = chainB.checkpoints.filter((c) => committed(c) < m);
    const afterGap = chainB.checkpoints.filter((c) => committed(c) >= m);
    expect(beforeGap.length).toBeGreaterThan(0);
    expect(afterGap.length).toBeGreaterThan(0);
    // inside the closed gap only the chunks already in flight at the close commit (2s of slack for a busy machine)
    const lateStarts = beforeGap.filter((c) => committed(c) - c.duration_ms > closeB + 2000);
    expect(lateStarts).toEqual([]);

    // A worked inside [M, M+6s) only, and now waits for tomorrow's window
    const closedA = await waitFor(
      'A stopped at its window close',
      async () => {
        const p = await progressOf(client, runA.workflowId);
        return p.state === 'waiting_window' && p.rowsProcessed > 0 && p;
      },
      90_000,
    );
    expect(closedA.window).toEqual({ isOpen: false, opensAt: new Date(m + DAY_MS).toISOString() });
    expect(closedA.rowsProcessed).toBeLessThan(30_000);
    const chainA = await checkpointChain(pool, tableA, a.name, { complete: false });
    expect(chainA.problems).toEqual([]);
    expect(chainA.rows).toBe(closedA.rowsProcessed);
    expect(chainA.checkpoints.every((c) => committed(c) >= m)).toBe(true);
    await sleep(2000);
    expect((await progressOf(client, runA.workflowId)).rowsProcessed).toBe(closedA.rowsProcessed);
    expect((await distribution(pool, tableA))['1']).toBe(closedA.rowsProcessed);

    const handleA = client.workflow.getHandle(runA.workflowId);
    await handleA.cancel();
    expect(await handleA.result().catch((e) => e)).toBeInstanceOf(WorkflowFailedError);
    recordFacts('windowed backfills', {
      rowsInsideA6sWindow: closedA.rowsProcessed,
      rowsBeforeAn8sClosedGap: closedB.rowsProcessed,
      rowsAfterReopening: 40_000 - closedB.rowsProcessed,
      commitsStartedInsideTheGap: 0,
    });
    process.stderr.write(
      `[window] A: ${closedA.rowsProcessed} of 30000 rows inside a ${openMs / 1000}s window, next opens ${closedA.window?.opensAt}; ` +
        `B: ${closedB.rowsProcessed} rows before an ${gapMs / 1000}s closed gap, ${40_000 - closedB.rowsProcessed} after it\n`,
    );
  } finally {
    await w.stop();
  }
});
