import { WorkflowFailedError } from '@temporalio/client';
import { setThrottleUpdate } from '../../workflows/definitions';
import { env, unique, makeCounterTable, waitFor, sleep, pool, client, useStack } from './harness';
import { counterSpec, distribution, progressOf } from './backfill-checks';
import { withWorker, startThroughClient, expectCompletedOnce } from './backfill-harness';
import type { Replica } from './replica';
import { startReplica } from './replica';
import { recordFacts } from './report';

/**
 * The latency budget and the replica-lag limit on real runs: a budget
 * changed through the throttle update steers a running backfill (it holds
 * under an impossible one and finishes once the budget is dropped), and a
 * real streaming replica whose replay is paused holds the backfill at the
 * lag limit until replay resumes.
 */
jest.setTimeout(90_000);

useStack();

/** Rows committed so far, from the checkpoints (the database's word, not the workflow's). */
async function committedRows(table: string, name: string): Promise<number> {
  const { rows } = await pool.query(
    `SELECT coalesce(sum(c.rows), 0)::int AS n FROM stagefill.checkpoints c JOIN stagefill.backfills b ON b.id = c.backfill_id AND b.generation = c.generation
      WHERE b.table_name = $1 AND b.name = $2`,
    [table, name],
  );
  return rows[0].n;
}

/** The run's progress once its controller holds it for `cause` (polled every 300 ms, for up to 30 s). */
function heldFor(workflowId: string, cause: string) {
  return waitFor(
    `a hold for ${cause}`,
    async () => {
      const p = await progressOf(client, workflowId);
      return p.control?.hold && p.control.holdCause === cause && p;
    },
    30_000,
    300,
  );
}

/** The rows do not move for `ms`: the backfill holds. */
async function expectHeld(table: string, name: string, ms: number): Promise<number> {
  await sleep(1000); // a chunk in flight when the hold began commits
  const before = await committedRows(table, name);
  await sleep(ms);
  expect(await committedRows(table, name)).toBe(before);
  return before;
}

test('a latency budget changed through setThrottle steers a running backfill: measured, held under an impossible budget, finished without one', async () => {
  const table = await makeCounterTable(pool, unique('t'), 200_000);
  // a generous budget relative to the probe's own baseline: measured first, then the controller ramps up (to at most 8k rows/s:
  // the run lasts 25 s or more, time for the cuts down to a hold below; at 20k it starts at 20k and could end first)
  // (a 2-s baseline, not the default 10 s: the test needs a baseline, not a good one)
  const s = counterSpec(table, {
    chunkSize: 1000,
    parallelism: 2,
    throttle: { latency: { p99Ratio: 50, baselineMs: 2000 }, maxRowsPerSecond: 8_000 },
  });
  await withWorker(async (taskQueue) => {
    const { workflowId, handle } = await startThroughClient(taskQueue, s, { leaseMs: 1000 });
    const measured = await waitFor('a baseline and a budget from it', async () => {
      const p = await progressOf(client, workflowId);
      return p.control?.baselineP99Ms !== undefined && p.control.budgetP99Ms !== undefined && p.rowsProcessed > 0 && p;
    });
    expect(measured.control!.budgetP99Ms).toBeCloseTo(50 * Math.max(measured.control!.baselineP99Ms!, 0.05), 5);
    expect(measured.control!.p99Ms).toBeGreaterThan(0);
    expect(measured.throttle.latency).toEqual({ p99Ratio: 50, baselineMs: 2000 });

    // a budget no lookup can keep (50 microseconds): the controller cuts to its floor and holds
    const settings = await handle.executeUpdate(setThrottleUpdate, { args: [{ latency: { p99Ms: 0.05 } }] });
    expect(settings.latency).toEqual({ p99Ms: 0.05 });
    const held = await waitFor(
      'a hold by the budget',
      async () => {
        const p = await progressOf(client, workflowId);
        return p.control?.hold && p.control.holdCause === 'budget' && p.control.budgetP99Ms === 0.05 && p;
      },
      60_000,
      500,
    );
    // the run says what it does now: held by its budget, and why
    expect(held.state).toBe('holding');
    expect(held.stateReason).toMatch(/^held by budget: .*0\.05 ms budget/);
    expect(held.control!.reason).toMatch(/0\.05 ms budget/);
    const rowsWhileHeld = await expectHeld(table, s.name, 3000);
    expect(rowsWhileHeld).toBeLessThan(200_000);

    // no budget: the run goes on with its spec's settings and finishes
    const plain = await handle.executeUpdate(setThrottleUpdate, { args: [{ latency: null }] });
    expect(plain.latency).toBeUndefined();
    await expectCompletedOnce(handle, table, s.name, 200_000);
    recordFacts('latency budget changed on a running backfill', {
      baselineP99Ms: measured.control!.baselineP99Ms!,
      heldAtRows: rowsWhileHeld,
      rows: 200_000,
    });
  });
});

/** The probe's decision as the control row holds it now (fresher than the progress query, which hears it from leases). */
async function storedDecision(table: string, name: string): Promise<{ action: string; hold: boolean; reason: string } | undefined> {
  const { rows } = await pool.query(
    `SELECT c.state FROM stagefill.backfill_control c JOIN stagefill.backfills b ON b.id = c.backfill_id WHERE b.table_name = $1 AND b.name = $2`,
    [table, name],
  );
  return rows[0]?.state?.control?.decision;
}

/**
 * A load on one hot row: each statement locks it for `level.holdMs` and then
 * leaves it alone for 7/3 of that (the row is locked 30% of the time), so a
 * statement that meets the lock waits up to `holdMs`: the p99 of a probe that
 * updates the row follows `holdMs`. One statement each (the lock's time is the
 * server's, not this busy process's round trips); real statements on the real
 * database, at most `maxCount` of them and until `stop` is set.
 */
async function lockLoad(hot: string, level: { holdMs: number; stop: boolean }, maxCount: number): Promise<number> {
  const c = await pool.connect();
  let n = 0;
  try {
    for (; n < maxCount && !level.stop; n++) {
      const holdMs = level.holdMs;
      await c.query(`WITH u AS (UPDATE ${hot} SET n = n + 1 WHERE id = 1 RETURNING n) SELECT pg_sleep($1) FROM u`, [holdMs / 1000]);
      await sleep((holdMs * 7) / 3);
    }
  } finally {
    c.release();
  }
  return n;
}

test('the baseline moves with the load: off-windows hold the backfill and measure again, following a load that doubles and then halves', async () => {
  const table = await makeCounterTable(pool, unique('t'), 400_000);
  const hot = `public.${unique('hot')}`;
  await pool.query(`CREATE TABLE ${hot} (id int PRIMARY KEY, n int NOT NULL); INSERT INTO ${hot} VALUES (1, 0)`);
  // waits of 300 ms and then 600: far above this shared host's own hiccups (tens of ms), so the baseline moves with the load
  const level = { holdMs: 300, stop: false };
  const load = lockLoad(hot, level, 3_000);
  try {
    // off-windows of 5 s every 12 s; the rate keeps the backfill running through all of it (400k rows at 2,000 rows/s)
    const s = counterSpec(table, {
      chunkSize: 500,
      parallelism: 1,
      throttle: {
        latency: {
          p99Ratio: 3,
          baselineMs: 2000,
          probe: [`UPDATE ${hot} SET n = n WHERE id = 1`],
          refresh: { everyMs: 12_000, holdMs: 5_000 },
        },
        maxRowsPerSecond: 2_000,
      },
    });
    await withWorker(async (taskQueue) => {
      const { workflowId, handle } = await startThroughClient(taskQueue, s, { leaseMs: 1000 });
      const control = async () => (await progressOf(client, workflowId)).control;
      /** The progress once `ok` holds for its control, after at least `windows` off-windows. */
      const after = (what: string, windows: number, ok: (c: NonNullable<Awaited<ReturnType<typeof control>>>) => boolean) =>
        waitFor(
          what,
          async () => {
            const c = await control();
            seen.push(`${c?.baselineWindows}:${c?.baselineP99Ms?.toFixed(1)}`);
            return c?.baselineWindows !== undefined && c.baselineWindows >= windows && c.baselineP99Ms !== undefined && ok(c) && c;
          },
          90_000,
          500,
        ).catch((err: Error) => {
          throw new Error(`${err.message}; windows:baseline seen: ${[...new Set(seen)].join(' ')}`);
        });
      const seen: string[] = [];

      // an off-window holds the backfill: the rows stand still while the probe measures (checked inside its 5 s, past its first second)
      await waitFor(
        'an off-window',
        async () => (await storedDecision(table, s.name))?.action === 'measuring' && (await committedRows(table, s.name)) > 0,
        60_000,
        100,
      );
      const measuring = (await storedDecision(table, s.name))!;
      expect(measuring).toMatchObject({ hold: true, action: 'measuring' });
      expect(measuring.reason).toMatch(/^refreshing the baseline p99 \(.* ms, \d+ s old\): the backfill holds 5 s every 12 s$/);
      await sleep(1000);
      const rowsIn = await committedRows(table, s.name);
      await sleep(1000);
      expect(await committedRows(table, s.name)).toBe(rowsIn);
      expect((await storedDecision(table, s.name))?.action).toBe('measuring');

      // the load as it was: two windows at it
      const steady = await after('two off-windows at the first load', 2, () => true);
      const low = steady.baselineP99Ms!;
      expect(steady.budgetP99Ms).toBeCloseTo(3 * low, 5);
      // the load doubles: within two more windows the baseline, and the budget with it, follow
      level.holdMs = 600;
      const up = await after('the baseline up with the load', steady.baselineWindows! + 1, (c) => c.baselineP99Ms! >= 1.3 * low);
      expect(up.budgetP99Ms).toBeCloseTo(3 * up.baselineP99Ms!, 5);
      expect(up.baselineAt).toBeGreaterThan(steady.baselineAt!);
      // and halves: back down
      level.holdMs = 300;
      const down = await after(
        'the baseline down with the load',
        up.baselineWindows! + 1,
        (c) => c.baselineP99Ms! <= up.baselineP99Ms! / 1.25,
      );
      expect(down.baselineAt).toBeGreaterThan(up.baselineAt!);

      // no budget: the run goes on with its spec's settings and finishes, every row once
      await handle.executeUpdate(setThrottleUpdate, { args: [{ latency: null, maxRowsPerSecond: null }] });
      await expectCompletedOnce(handle, table, s.name, 400_000);
      recordFacts('the baseline follows a load that doubles and halves', {
        lowP99Ms: low,
        upP99Ms: up.baselineP99Ms!,
        downP99Ms: down.baselineP99Ms!,
        windows: down.baselineWindows!,
      });
    });
  } finally {
    level.stop = true;
    await load;
  }
}, 240_000);

test('a probe restarted inside an off-window (a throttle update) goes on at the settings before the window, not from one lane', async () => {
  const table = await makeCounterTable(pool, unique('t'), 2_000_000);
  const s = counterSpec(table, {
    chunkSize: 1000,
    parallelism: 2,
    throttle: { latency: { p99Ratio: 50, baselineMs: 2000, refresh: { everyMs: 10_000, holdMs: 5_000 } }, maxRowsPerSecond: 20_000 },
  });
  await withWorker(async (taskQueue) => {
    const { handle } = await startThroughClient(taskQueue, s, { leaseMs: 1000 });
    type Stored = { action: string; lanes: number; at: number };
    const stored = async () => (await storedDecision(table, s.name)) as unknown as Stored | undefined;
    // the controller climbs to its second lane, then an off-window begins
    await waitFor('two lanes', async () => (await stored())?.lanes === 2 && (await stored())?.action !== 'measuring', 90_000, 100);
    await waitFor(
      'an off-window at two lanes',
      async () => {
        const d = await stored();
        return d?.action === 'measuring' && d.lanes === 2;
      },
      60_000,
      50,
    );
    // a new rate ceiling restarts the probe while the window holds the lanes
    const sent = Date.now();
    await handle.executeUpdate(setThrottleUpdate, { args: [{ maxRowsPerSecond: 19_000 }] });
    const after = await waitFor(
      "the restarted probe's first decision",
      async () => {
        const d = await stored();
        return d && d.action !== 'measuring' && d.at > sent && d;
      },
      60_000,
      50,
    );
    expect(after.lanes).toBe(2);
    await handle.cancel();
  });
});

test('settings that kept a budget are remembered for the table: the next budgeted backfill of it starts a step below them, not at the slow start', async () => {
  const table = await makeCounterTable(pool, unique('t'), 500_000);
  // a budget no lookup breaks: the controller climbs to its highest settings (2 lanes, 10,000-row chunks, 30,000 rows/s) and keeps them
  const throttle = { latency: { p99Ms: 10_000 }, maxRowsPerSecond: 30_000 };
  const first = counterSpec(table, { chunkSize: 1000, parallelism: 2, throttle });
  await withWorker(async (taskQueue) => {
    const one = await startThroughClient(taskQueue, first, { leaseMs: 1000 });
    const kept = await waitFor(
      'settings remembered for the table',
      async () => (await pool.query(`SELECT * FROM stagefill.throttle_memory WHERE table_name = $1`, [table])).rows[0],
      120_000,
      500,
    );
    expect(kept.budget_p99_ms).toBe(10_000);
    expect(kept.p99_ms).toBeLessThanOrEqual(10_000);
    await expectCompletedOnce(one.handle, table, first.name, 500_000);
    const remembered = (await pool.query(`SELECT * FROM stagefill.throttle_memory WHERE table_name = $1`, [table])).rows[0];

    // the same table again: the first decision is a step below what was kept (the slow start would be 1 lane, 1,000-row chunks, 30,000 rows/s: 32 chunks a second under the spec's cap)
    const second = counterSpec(table, { chunkSize: 1000, parallelism: 2, throttle });
    const two = await startThroughClient(taskQueue, second, { leaseMs: 1000 });
    const start = await waitFor("the second run's first decision", () => storedDecision(table, second.name), 60_000, 50);
    const d = start as unknown as { rowsPerSecond?: number; lanes: number; chunkSize: number };
    expect(d.lanes).toBe(Math.max(1, remembered.lanes - 1));
    if (remembered.rows_per_second !== null) expect(d.rowsPerSecond).toBeGreaterThanOrEqual(Math.round(remembered.rows_per_second * 0.7));
    expect(d.chunkSize).toBeGreaterThan(1000);
    await two.handle.cancel();
    recordFacts('a budgeted backfill starts from the settings remembered for its table', {
      rememberedLanes: remembered.lanes,
      rememberedChunk: remembered.chunk_size,
      rememberedRate: remembered.rows_per_second ?? -1,
      startLanes: d.lanes,
      startChunk: d.chunkSize,
      startRate: d.rowsPerSecond ?? -1,
    });
  });
});

test('a probe transaction (a list of statements) is timed from BEGIN to COMMIT and its writes commit; a statement that fails fails the run naming the probe', async () => {
  const table = await makeCounterTable(pool, unique('t'), 20_000);
  const hits = `public.${unique('probe_hits')}`;
  await pool.query(`CREATE TABLE ${hits} (n int NOT NULL); INSERT INTO ${hits} VALUES (0)`);
  const probe = [`UPDATE ${hits} SET n = n + 1`, `SELECT n FROM ${hits}`, `SELECT count(*) FROM ${table} WHERE id < 10`];
  const s = counterSpec(table, { throttle: { latency: { p99Ms: 10_000, probe, probeEveryMs: 20 }, maxRowsPerSecond: 10_000 } });
  await withWorker(async (taskQueue) => {
    const { workflowId, handle } = await startThroughClient(taskQueue, s, { leaseMs: 1000 });
    const timed = await waitFor('probe samples from the transaction', async () => {
      const p = await progressOf(client, workflowId);
      return p.control?.p99Ms !== undefined && p;
    });
    expect(timed.throttle.latency?.probe).toEqual(probe);
    await expectCompletedOnce(handle, table, s.name, 20_000);
    // every transaction committed its update: the counter moved, once per probe
    const { rows } = await pool.query(`SELECT n FROM ${hits}`);
    expect(rows[0].n).toBeGreaterThan(10);

    const broken = counterSpec(table, {
      throttle: { latency: { p99Ms: 10_000, probe: [`UPDATE ${hits} SET n = n + 1`, 'SELECT * FROM public.no_such_table_for_the_probe'] } },
    });
    const before = (await pool.query(`SELECT n FROM ${hits}`)).rows[0].n;
    const bad = await startThroughClient(taskQueue, broken, { leaseMs: 1000 });
    const err = await bad.handle.result().catch((e) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const messages: string[] = [];
    for (let e = err as { message?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) messages.push(String(e.message));
    expect(messages.join(' / ')).toMatch(/throttle\.latency\.probe failed: .*no_such_table_for_the_probe/);
    // the failed statement rolled its transaction back: the update before it did not commit
    expect((await pool.query(`SELECT n FROM ${hits}`)).rows[0].n).toBe(before);
  });
});

test("the lane's session writes back as it goes: backend_flush_after 256kB by default, throttle.flushAfterKb when set, the server's own at 0", async () => {
  const server = (await pool.query(`SELECT pg_size_bytes(current_setting('backend_flush_after')) / 1024 AS kb`)).rows[0].kb;
  await withWorker(async (taskQueue) => {
    const seen: Record<string, number[]> = {};
    for (const [label, flushAfterKb] of [
      ['default', undefined],
      ['64', 64],
      ['0', 0],
    ] as const) {
      const table = await makeCounterTable(pool, unique('t'), 3_000);
      // the transform records the setting its own session runs with
      const s = counterSpec(table, {
        transform: `UPDATE ${table} SET n = n + 1, v = pg_size_bytes(current_setting('backend_flush_after')) / 1024 WHERE id >= :lo AND id < :hi`,
        ...(flushAfterKb === undefined ? {} : { throttle: { flushAfterKb } }),
      });
      const { handle } = await startThroughClient(taskQueue, s, { leaseMs: 1000 });
      await expectCompletedOnce(handle, table, s.name, 3_000);
      seen[label] = (await pool.query(`SELECT DISTINCT v FROM ${table} ORDER BY v`)).rows.map((r) => Number(r.v));
    }
    expect(seen).toEqual({ default: [256], '64': [64], '0': [Number(server)] });
  });
});

describe('with a real streaming replica', () => {
  let replica: Replica | undefined;
  beforeAll(async () => {
    replica = await startReplica(env().databaseUrl, unique('replica').toLowerCase().slice(0, 40));
  }, 60_000);
  afterAll(async () => {
    await replica?.resumeReplay().catch(() => {});
    await replica?.stop();
  });

  test('replay paused: the backfill holds at the lag limit, and finishes after replay resumes', async () => {
    const table = await makeCounterTable(pool, unique('t'), 100_000);
    const s = counterSpec(table, { chunkSize: 1000, parallelism: 2, throttle: { maxReplicaLagMs: 1500, maxRowsPerSecond: 20_000 } });
    await withWorker(async (taskQueue) => {
      const { workflowId, handle } = await startThroughClient(taskQueue, s, { leaseMs: 1000 });
      const streaming = await waitFor('rows moving with the replica streaming', async () => {
        const p = await progressOf(client, workflowId);
        return p.rowsProcessed >= 5000 && p.control?.replicas?.some((r) => r.name.startsWith(replica!.name)) && p;
      });
      expect(streaming.control!.hold).toBe(false);

      await replica!.pauseReplay();
      const held = await heldFor(workflowId, 'replica_lag');
      const lag = held.control!.replicas!.find((r) => r.name.startsWith(replica!.name))!;
      expect(lag.lagMs).toBeGreaterThan(1500);
      expect(held.control!.reason).toMatch(/replica lag \d+ ms over the limit of 1500 ms/);
      const rowsHeld = await expectHeld(table, s.name, 3000);
      expect(rowsHeld).toBeLessThan(100_000);

      await replica!.resumeReplay();
      await expectCompletedOnce(handle, table, s.name, 100_000);
      recordFacts('replica replay paused during a backfill', {
        maxReplicaLagMs: 1500,
        lagSeenMs: lag.lagMs ?? -1,
        heldAtRows: rowsHeld,
        rows: 100_000,
      });
    });
  });

  test('a replica that disappears is reported and holds the backfill (onReplicaMissing: hold); set to ignore, it finishes', async () => {
    const table = await makeCounterTable(pool, unique('t'), 60_000);
    const s = counterSpec(table, { chunkSize: 1000, parallelism: 1, throttle: { maxReplicaLagMs: 5000, maxRowsPerSecond: 10_000 } });
    await withWorker(async (taskQueue) => {
      const { workflowId, handle } = await startThroughClient(taskQueue, s, { leaseMs: 1000 });
      await waitFor('the replica seen', async () =>
        (await progressOf(client, workflowId)).control?.replicas?.some((r) => r.name.startsWith(replica!.name) && r.state === 'streaming'),
      );
      const name = replica!.name;
      await replica!.stop();
      const held = await heldFor(workflowId, 'replica_missing');
      expect(held.control!.replicas!.find((r) => r.name.startsWith(name))).toMatchObject({ state: 'missing', lagMs: null });
      expect(held.control!.reason).toContain('disappeared from pg_stat_replication');
      await expectHeld(table, s.name, 2000);

      await handle.executeUpdate(setThrottleUpdate, { args: [{ onReplicaMissing: 'ignore' }] });
      const result = await handle.result();
      expect(result.state).toBe('completed');
      expect(await distribution(pool, table)).toEqual({ '1': 60_000 });
    });
  });
});
