import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WorkflowFailedError } from '@temporalio/client';
import { approveSignal, pauseSignal, resumeSignal, retrySignal, rollbackSignal, progressQuery } from '../../workflows/definitions';
import type { BackfillProgress, RolloutProgress } from '../../workflows/definitions';
import { SA } from '../../workflows/search-attributes';
import { rolloutWorkflow } from '../../workflows/rollout/workflow';
import { parseRolloutSpec, parseBackfillSpec } from '../../steps/spec';
import { startBackfill } from '../../client/operations';
import { readColumnObjects } from '../../db/rollout/column-objects';
import {
  unique,
  makeCounterTable,
  waitFor,
  pool,
  client,
  useStack,
  dir,
  sleep,
  env,
  testLogger,
  afterThisTest,
  startWorker,
} from './harness';
import { createStagefillWorker } from '../../worker/run';
import { counterSpec, makeHealthTable, connectionFor } from './backfill-checks';
import { progressOf, outcome } from './rollout-harness';
import { ownWorker, rolloutOnOwnWorker, waitForState, workerConfigFor } from './own-worker';
import { runCli, cliEnv, writeSpec } from './cli-harness';

/**
 * Issue 32, "what the operator sees must be true": a rollout's shown state
 * (paused, a backfill's hold, the rollback window) in `status --json`, `list
 * --state` and the StagefillState search attribute; rate and ETA of a run
 * that stands; the checkpoints a continued backfill picked up; a finished
 * run's gauges; the audit of a rollout's state changes and of its rollback.
 * And from issue 29: a held contract continues as new, a cancel that comes
 * with a continue-as-new is not lost.
 */
jest.setTimeout(240_000);

useStack({ dir: 'operator-states' });

const searchState = async (workflowId: string) =>
  (await client.workflow.getHandle(workflowId).describe()).typedSearchAttributes.get(SA.state);

async function statusJson<T>(workflowId: string, taskQueue: string): Promise<T> {
  const r = await runCli(['status', workflowId, '--json'], cliEnv(taskQueue));
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** `stagefill list --json` with these flags: the workflow ids it lists. */
async function listed(taskQueue: string, ...flags: string[]): Promise<string[]> {
  const r = await runCli(['list', ...flags, '--json'], cliEnv(taskQueue));
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { workflowId: string }[]).map((x) => x.workflowId);
}

async function auditOf(workflowId: string): Promise<{ event: string; subject: string | null; detail: Record<string, unknown> | null }[]> {
  const { rows } = await pool.query(`SELECT event, subject, detail FROM stagefill.events WHERE workflow_id = $1 ORDER BY id`, [workflowId]);
  return rows;
}

test('a rollout paused while it waits for approval shows paused (status --json, list --state paused, the search attribute), stays paused when approved, and its state changes have audit rows', async () => {
  const table = await makeCounterTable(pool, unique('t'), 100);
  const { handle, taskQueue } = await rolloutOnOwnWorker({
    name: unique('paused'),
    table,
    steps: [
      { id: 'approve', kind: 'approval', timeout: '10m' },
      { id: 'check', kind: 'gate', checks: [{ name: 'rows', sql: `SELECT count(*) FROM ${table}`, expect: { eq: 100 } }] },
    ],
  });
  const id = handle.workflowId;
  await waitForState(handle, 'waiting_approval');
  // "what is running?": a rollout waiting for approval is running
  await waitFor('list --state running to find it', async () =>
    (await listed(taskQueue, '--state', 'running', '--table', table)).includes(id),
  );

  await handle.signal(pauseSignal, { by: 'test' });
  const paused = await waitForState(handle, 'paused');
  expect(paused).toMatchObject({ paused: true, etaSeconds: null });
  expect(paused.stateReason).toMatch(/paused while waiting_approval/);
  expect(await statusJson<RolloutProgress>(id, taskQueue)).toMatchObject({ state: 'paused', paused: true, workflowStatus: 'RUNNING' });
  await waitFor('the search attribute to say paused', async () => (await searchState(id)) === 'paused');
  await waitFor('list --state paused to find it', async () =>
    (await listed(taskQueue, '--state', 'paused', '--table', table)).includes(id),
  );

  // approved while paused: the approval completes, nothing else starts, and it still shows paused
  await handle.signal(approveSignal, { by: 'test' });
  const approved = await waitFor('the approval step to complete', async () => {
    const p = await progressOf(handle);
    return p.steps.find((s) => s.id === 'approve')?.state === 'completed' && p;
  });
  await sleep(1000);
  const still = await progressOf(handle);
  expect(approved.state).toBe('paused');
  expect(still.state).toBe('paused');
  expect(still.steps.find((s) => s.id === 'check')?.state).toBe('pending');
  expect(await searchState(id)).toBe('paused');

  await handle.signal(resumeSignal, { by: 'test' });
  expect((await outcome(handle)).state).toBe('completed');
  expect(await searchState(id)).toBe('completed');
  const changes = (await auditOf(id)).filter((e) => e.event === 'state_changed').map((e) => `${e.detail?.from}->${e.detail?.to}`);
  expect(changes).toEqual(['starting->running', 'running->waiting_approval', 'waiting_approval->running', 'running->completed']);
});

test('a rollout whose backfill backs off shows backing_off, and paused while it backfills shows paused; both in the search attribute', async () => {
  const table = await makeCounterTable(pool, unique('t'), 2000);
  const health = await makeHealthTable(pool, 30);
  const { handle, taskQueue } = await rolloutOnOwnWorker({
    name: unique('backoff'),
    table,
    steps: [
      {
        kind: 'addColumn',
        column: 'n2',
        type: 'int',
        up: 'n + 1',
        backfill: {
          chunkSize: 100,
          parallelism: 1,
          throttle: { maxRowsPerSecond: 400, healthCheck: { sql: `SELECT lag FROM ${health}`, max: 5, every: '100ms', backoff: '200ms' } },
        },
      },
    ],
  });
  const id = handle.workflowId;
  const off = await waitForState(handle, 'backing_off');
  expect(off.stateReason).toMatch(/backing_off: health check returned 30, over its max of 5/);
  expect(off.etaSeconds).toBeNull();
  await waitFor('the search attribute to say backing_off', async () => (await searchState(id)) === 'backing_off');
  expect(await statusJson<RolloutProgress>(id, taskQueue)).toMatchObject({ state: 'backing_off' });

  await pool.query(`UPDATE ${health} SET lag = 0`);
  await waitFor('rows moving again', async () => {
    const p = await progressOf(handle);
    return p.state === 'running' && (p.backfills[0]?.rowsDone ?? 0) > 0;
  });
  await waitFor('the search attribute to say running', async () => (await searchState(id)) === 'running');

  await handle.signal(pauseSignal, { by: 'test' });
  const paused = await waitForState(handle, 'paused');
  expect(paused.stateReason).toMatch(/^paused/);
  await waitFor('the search attribute to say paused', async () => (await searchState(id)) === 'paused');
  await handle.signal(resumeSignal, { by: 'test' });
  expect((await outcome(handle)).state).toBe('completed');
});

test('a contract waiting for its rollback window shows waiting_window and when the window ends; a rollback audits rollback_started before its reverts', async () => {
  const table = await makeCounterTable(pool, unique('t'), 100);
  const { handle, taskQueue } = await rolloutOnOwnWorker({
    name: unique('window'),
    table,
    rollbackWindow: '10m',
    steps: [
      { id: 'n2', kind: 'addColumn', column: 'n2', type: 'int', up: 'n + 1', backfill: { chunkSize: 50 } },
      { id: 'contract', kind: 'contract' },
    ],
  });
  const id = handle.workflowId;
  const started = Date.now();
  const waiting = await waitForState(handle, 'waiting_window');
  expect(waiting.rollbackWindow?.step).toBe('contract');
  const endsAt = Date.parse(waiting.rollbackWindow!.endsAt);
  expect(endsAt).toBeGreaterThan(started + 9 * 60_000);
  expect(endsAt).toBeLessThan(Date.now() + 10 * 60_000 + 1000);
  expect(waiting.stateReason).toContain(`until ${waiting.rollbackWindow!.endsAt}`);
  await waitFor('the search attribute to say waiting_window', async () => (await searchState(id)) === 'waiting_window');
  const text = await runCli(['status', id], cliEnv(taskQueue));
  expect(text.stdout).toContain(`rollback window: ends ${waiting.rollbackWindow!.endsAt}`);

  await handle.signal(rollbackSignal, { by: 'test', reason: 'window test' });
  expect((await outcome(handle)).state).toBe('rolled_back');
  const events = (await auditOf(id)).map((e) => e.event);
  expect(events).toContain('step_reverted');
  expect(events.indexOf('rollback_started')).toBeGreaterThanOrEqual(0);
  expect(events.indexOf('rollback_started')).toBeLessThan(events.indexOf('step_reverted'));
});

test('a paused backfill shows 0 rows/s and "ETA paused", not its average; started again, it says how many chunks its checkpoints held', async () => {
  const table = await makeCounterTable(pool, unique('t'), 20_000);
  const raw = {
    kind: 'backfill',
    name: unique('bf'),
    table,
    key: 'id',
    chunkSize: 100,
    parallelism: 1,
    throttle: { maxRowsPerSecond: 1000 },
    transform: `UPDATE ${table} SET n = n + 1 WHERE id >= :lo AND id < :hi`,
  };
  const s = parseBackfillSpec(raw);
  const { taskQueue } = await ownWorker();
  const { workflowId } = await startBackfill(connectionFor(client, taskQueue), s, { leaseMs: 500 });
  const handle = client.workflow.getHandle(workflowId);
  await waitFor('rows', async () => ((await handle.query(progressQuery)) as BackfillProgress).rowsProcessed >= 1000);
  await handle.signal(pauseSignal, { by: 'test' });
  const paused = await waitFor('paused', async () => {
    const p = (await handle.query(progressQuery)) as BackfillProgress;
    return p.state === 'paused' && p;
  });
  expect(paused.rowsPerSecond).toBe(0);
  expect(paused.etaSeconds).toBeNull();
  expect(paused.averageRowsPerSecond).toBeGreaterThan(0);
  const text = await runCli(['status', workflowId], cliEnv(taskQueue));
  expect(text.stdout).toMatch(/ 0 rows\/s ETA paused/);

  await handle.cancel();
  await expect(handle.result()).rejects.toThrow();
  const { rows } = await pool.query(
    `SELECT count(*)::int AS n FROM stagefill.checkpoints c JOIN stagefill.backfills b ON b.id = c.backfill_id AND c.generation = b.generation
      WHERE b.table_name = $1 AND b.name = $2`,
    [table, s.name],
  );
  const done = rows[0].n as number;
  expect(done).toBe(paused.chunksDone);
  // started again (without its rate limit: it works many chunks before the CLI's first look): it continues from the
  // checkpoints and says how many there were, not what it did since
  const { throttle: _limit, ...unlimited } = raw;
  const start = await runCli(['start', writeSpec(dir, unlimited)], cliEnv(taskQueue));
  expect(start.code).toBe(0);
  expect(start.stderr).toContain(`continuing from checkpoints: ${done} chunks already done`);
  // what the message reads, whenever it is read: the chunks done before this run, however far the run has got since
  // (the CLI's first look usually comes before the first lease returns; the issue saw it come after)
  const later = await waitFor('the new run past its checkpoints', async () => {
    const p = (await client.workflow.getHandle(workflowId).query(progressQuery)) as BackfillProgress;
    return p.chunksDone > done && p;
  });
  expect(later.continued).toBe(true);
  expect(later.chunksBefore).toBe(done);
  await client.workflow
    .getHandle(workflowId)
    .cancel()
    .catch(() => {}); // it may have finished
});

test("a finished backfill's throttle gauges are removed when it ends", async () => {
  const table = await makeCounterTable(pool, unique('t'), 5000);
  const s = counterSpec(table, {
    chunkSize: 250,
    parallelism: 1,
    throttle: { latency: { p99Ratio: 50, baselineMs: 1000 }, maxRowsPerSecond: 2000 },
  });
  const { taskQueue, w } = await ownWorker();
  const { workflowId } = await startBackfill(connectionFor(client, taskQueue), s, { leaseMs: 500 });
  const series = async () =>
    (await w.sw.metrics.registry.metrics()).split('\n').filter((l) => l.startsWith('stagefill_') && l.includes(`name="${s.name}"`));
  await waitFor('the throttle gauges of the run', async () => (await series()).some((l) => l.startsWith('stagefill_throttle_lanes')));
  const result = await client.workflow.getHandle(workflowId).result();
  expect(result.state).toBe('completed');
  // counters stay (they only ever rise); every gauge of the run is gone
  expect((await series()).filter((l) => !/_total\{/.test(l))).toEqual([]);
});

test('a contract held on its counterpart check continues as new like other long waits, and a retry in the next run completes it', async () => {
  const t = unique('held');
  const q = `public."${t}"`;
  await pool.query(`CREATE TABLE ${q} (id bigint PRIMARY KEY, qty int NOT NULL)`);
  await pool.query(`COMMENT ON COLUMN ${q}.qty IS 'units'`);
  await pool.query(`INSERT INTO ${q} SELECT g, g % 7 FROM generate_series(1, 200) g`);
  const { taskQueue } = await ownWorker();
  const spec = parseRolloutSpec({
    kind: 'rollout',
    name: unique('held'),
    table: `public.${t}`,
    steps: [
      { kind: 'alterColumn', column: 'qty', newType: 'bigint', up: 'qty::bigint', down: 'qty::int' },
      { kind: 'approval', timeout: '10m' },
      { kind: 'contract' },
    ],
  });
  const handle = await client.workflow.start(rolloutWorkflow, {
    taskQueue,
    workflowId: unique('held'),
    args: [{ spec, actor: 'test', continueAsNewAfterEvents: 200 }],
  });
  const firstRunId = handle.firstExecutionRunId;
  await waitForState(handle, 'waiting_approval');
  await pool.query(`COMMENT ON COLUMN ${q}.qty_stagefill_new IS NULL`);
  await handle.signal(approveSignal, { by: 'bob' });
  await waitForState(handle, 'held');
  // resumes, each audited, grow the held run's history past its limit: it hands over to a new run
  for (let i = 0; (await handle.describe()).runId === firstRunId && i < 80; i++) {
    await handle.signal(resumeSignal, { by: `r${i}` });
    await sleep(50);
  }
  await waitFor('a new run of the chain', async () => (await handle.describe()).runId !== firstRunId, 30_000);
  const carried = await waitForState(handle, 'held');
  expect(carried.lastError).toMatch(/MISSING\s+comment on public\.\S+\.qty/);
  expect((await readColumnObjects(pool, `public.${t}`, 'qty')).type).toBe('integer'); // nothing dropped

  await pool.query(`COMMENT ON COLUMN ${q}.qty_stagefill_new IS 'units'`);
  await handle.signal(retrySignal, { by: 'bob' });
  expect(await outcome(handle)).toMatchObject({ state: 'completed' });
  expect(await readColumnObjects(pool, `public.${t}`, 'qty')).toMatchObject({ type: 'bigint', comment: 'units' });
});

/** A receiver that holds every delivery until released. */
async function holdingReceiver(): Promise<{ url: string; held: string[]; release(): void; close(): Promise<void> }> {
  const held: string[] = [];
  const waiting: http.ServerResponse[] = [];
  let released = false;
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      held.push((JSON.parse(data) as { event: string }).event);
      if (released) res.end('ok');
      else waiting.push(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    held,
    release() {
      released = true;
      for (const res of waiting.splice(0)) res.end('ok');
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

test('a cancel that arrives while the rollout hands over to a new run is not lost: the rollout is cancelled (reverted), not carried on', async () => {
  const table = await makeCounterTable(pool, unique('t'), 100);
  const hook = await holdingReceiver();
  const { taskQueue } = await ownWorker();
  try {
    const spec = parseRolloutSpec({
      kind: 'rollout',
      name: unique('cancelcan'),
      table,
      notify: { webhook: hook.url, on: ['awaiting_approval'] },
      steps: [{ id: 'approve', kind: 'approval', timeout: '1h' }],
    });
    const handle = await client.workflow.start(rolloutWorkflow, {
      taskQueue,
      workflowId: unique('cancelcan'),
      args: [{ spec, actor: 'test', continueAsNewAfterEvents: 200 }],
    });
    const firstRunId = handle.firstExecutionRunId;
    await waitFor('the awaiting_approval delivery', async () => hook.held.includes('awaiting_approval'));
    // the history grows past its limit while the delivery is held: the run decides to hand over and waits for it
    for (let i = 0; (await handle.describe()).historyLength < 220 && i < 60; i++) {
      await handle.signal(resumeSignal, { by: `r${i}` });
      await sleep(40);
    }
    expect((await handle.describe()).runId).toBe(firstRunId);
    await handle.cancel();
    await sleep(1000);
    hook.release();
    const ended = await Promise.race([
      handle.result().then(
        () => 'completed',
        (err) => (err instanceof WorkflowFailedError ? (err.cause?.name ?? 'failed') : String(err)),
      ),
      sleep(90_000).then(() => 'still running after 90 s: the cancel was lost at the hand-over'),
    ]);
    expect(ended).toBe('CancelledFailure');
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect((await progressOf(handle)).state).toBe('cancelled');
  } finally {
    await hook.close();
  }
});

test('a worker whose task queue belongs to a versioned deployment warns at start and in its metrics; status says no worker of the build polls', async () => {
  const taskQueue = unique('versioned');
  const deployment = unique('dep');
  // versioned workers once made their build current, then stopped
  const versioned = await createStagefillWorker({
    config: workerConfigFor(taskQueue, {
      STAGEFILL_DEPLOYMENT: deployment,
      STAGEFILL_BUILD_ID: 'b1',
      STAGEFILL_SET_CURRENT_VERSION: 'true',
    }),
    logger: testLogger,
    workflowBundlePath: env().bundle,
  });
  const running = versioned.run();
  await versioned.madeCurrent;
  versioned.shutdown();
  await running;

  // an unversioned worker on the same queue polls and would get nothing: it says so
  const w = await startWorker(taskQueue);
  afterThisTest(() => w.stop());
  const problem = await w.sw.routing;
  expect(problem).toContain(`task queue ${taskQueue} belongs to worker deployment ${deployment}, whose current version is build b1`);
  expect(problem).toContain(`temporal worker deployment set-current-version --deployment-name ${deployment} --unversioned`);
  const metrics = await w.sw.metrics.registry.metrics();
  expect(metrics).toContain(`stagefill_worker_gets_no_work{task_queue="${taskQueue}",deployment="${deployment}",current_build="b1"} 1`);

  // a run started there sits unanswered: status names the cause instead of a bare query failure
  const table = await makeCounterTable(pool, unique('t'), 100);
  const { workflowId } = await startBackfill(connectionFor(client, taskQueue), counterSpec(table));
  afterThisTest(async () => {
    await client.workflow.getHandle(workflowId).terminate('test over');
  });
  const status = await runCli(['status', workflowId], cliEnv(taskQueue));
  expect(status.code).toBe(1);
  expect(status.stderr).toContain(`no worker of the run's build is polling: task queue ${taskQueue} sends its work to build b1`);
  expect(status.stderr).toContain('--unversioned');
});
