import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pool } from 'pg';
import type { WorkflowHandle } from '@temporalio/client';
import { Client, Connection } from '@temporalio/client';
import { backfillWorkflowId } from '../../core/common/ids';
import { startBackfill } from '../../client/operations';
import { createPool } from '../../db/pool';
import { startTemporalDevServer, startEmbeddedPostgres, freePort } from '../../devstack';
import type { Service } from '../../devstack/process';
import { env, pool, client, useStack, afterThisTest, spawnWorker, exited, unique, makeCounterTable, waitFor, sleep } from './harness';
import { counterSpec, distribution, checkpointChain, connectionFor } from './backfill-checks';
import { startRun, expectCompletedOnce } from './backfill-harness';
import { recordFacts } from './report';

// Needs dist/ (`npx tsc -p tsconfig.build.json`): workers are real processes, faults are real signals.
jest.setTimeout(420_000);

useStack();

function worker(taskQueue: string, extraEnv: Record<string, string> = {}) {
  const w = spawnWorker(taskQueue, extraEnv);
  afterThisTest(async () => {
    // a worker that died by itself is a finding: show what it said
    if (w.exitCode !== null) process.stderr.write(`[faults] worker ${w.pid} exited ${w.exitCode}:\n${w.output().slice(-3000)}\n`);
    w.kill('SIGKILL');
    await exited(w);
  });
  return w;
}

/** The process a devstack guardian runs (the guardian itself is only `sh`). */
function servicePid(service: Service): number {
  const guardian = service.child.pid!;
  const children = fs.readFileSync(`/proc/${guardian}/task/${guardian}/children`, 'utf8').trim().split(/\s+/).map(Number);
  const pid = children.find((c) => {
    try {
      return !fs.readFileSync(`/proc/${c}/cmdline`, 'utf8').startsWith('/bin/sh');
    } catch {
      return false;
    }
  });
  if (!pid) throw new Error(`no service process under guardian ${guardian}`);
  return pid;
}

/** Local TCP ports of a process's sockets: its sockets' inodes, looked up in /proc/net/tcp. */
function localPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(table)) continue;
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9]!)) ports.push(parseInt(cols[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

async function rowsCommitted(p: Pool, table: string): Promise<number> {
  return (await distribution(p, table))['1'] ?? 0;
}

test('the Temporal dev server SIGKILLed mid-backfill and restarted on its persistence file: the backfill continues and completes, every row once', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-faults-temporal-'));
  afterThisTest(() => fs.rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const start = () =>
    startTemporalDevServer({
      cli: env().cli,
      port,
      headless: true,
      dbFile: path.join(dir, 'temporal.db'),
      logFile: path.join(dir, 'temporal.log'),
    });
  let server = await start();
  afterThisTest(() => server.stop());
  const connection = await Connection.connect({ address: server.address });
  afterThisTest(() => connection.close());
  const own = new Client({ connection, namespace: server.namespace });

  const total = 60_000;
  const table = await makeCounterTable(pool, unique('t'), total);
  const s = counterSpec(table, { chunkSize: 500, throttle: { maxRowsPerSecond: 6000 } });
  const taskQueue = unique('q');
  const w = worker(taskQueue, { TEMPORAL_ADDRESS: server.address });
  const { workflowId } = await startBackfill(connectionFor(own, taskQueue), s, { leaseMs: 1000 });
  await waitFor('progress', async () => (await rowsCommitted(pool, table)) >= 5000);

  process.kill(servicePid(server.service), 'SIGKILL');
  await server.service.exited;
  const atKill = await rowsCommitted(pool, table);
  await sleep(3000); // the worker keeps polling a server that is gone
  server = await start();
  const { chain } = await expectCompletedOnce(own.workflow.getHandle(workflowId), table, s.name, total);
  expect(w.exitCode).toBeNull(); // the worker rode out the outage
  expect(chain.rows).toBe(total);
  recordFacts('Temporal dev server SIGKILLed and restarted mid-backfill', {
    rows: total,
    rowsDoneAtKill: atKill,
    serverDownSeconds: 3,
    rowsChangedTwice: 0,
  });
});

test("the worker's Postgres connections terminated (pg_terminate_backend) again and again mid-backfill: chunks retry, every row once", async () => {
  const total = 60_000;
  const table = await makeCounterTable(pool, unique('t'), total);
  const s = counterSpec(table, { chunkSize: 500, parallelism: 3, throttle: { maxRowsPerSecond: 8000 } });
  const taskQueue = unique('q');
  const w = worker(taskQueue);
  const { workflowId } = await startBackfill(connectionFor(client, taskQueue), s, { leaseMs: 1000 });
  await waitFor('progress', async () => (await rowsCommitted(pool, table)) > 0);

  // only this worker's connections (by their client ports): other test files may share the database
  let terminated = 0;
  let rounds = 0;
  while ((await rowsCommitted(pool, table)) < total * 0.8 && rounds < 10) {
    const { rows } = await pool.query(
      `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
        WHERE application_name = 'stagefill-worker' AND client_port = ANY($1::int[])`,
      [localPorts(w.pid!)],
    );
    terminated += rows[0].n;
    rounds++;
    await sleep(400 + Math.floor(Math.random() * 600));
  }
  await expectCompletedOnce(client.workflow.getHandle(workflowId), table, s.name, total);
  expect(terminated).toBeGreaterThanOrEqual(3);
  recordFacts('worker connections terminated with pg_terminate_backend mid-backfill', {
    rows: total,
    connectionsTerminated: terminated,
    rounds,
    rowsChangedTwice: 0,
  });
});

/** Rows the workflow's leases report in its history: who applied what. */
async function leaseRows(handle: WorkflowHandle): Promise<number> {
  const history = await handle.fetchHistory();
  const leases = new Set(
    history
      .events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runPartitionLease')
      .map((e) => String(e.eventId)),
  );
  let rows = 0;
  for (const e of history.events!) {
    const done = e.activityTaskCompletedEventAttributes;
    if (!done || !leases.has(String(done.scheduledEventId))) continue;
    rows += (client.options.loadedDataConverter.payloadConverter.fromPayload(done.result!.payloads![0]!) as { rows: number }).rows;
  }
  return rows;
}

test('two workflows and two workers racing over the same backfill (a schedule firing during a manual run): no chunk applied twice', async () => {
  const total = 40_000;
  const table = await makeCounterTable(pool, unique('t'), total);
  const s = counterSpec(table, { chunkSize: 250, parallelism: 4, throttle: { maxRowsPerSecond: 8000 } });
  const taskQueue = unique('q');
  worker(taskQueue);
  worker(taskQueue);
  const conn = connectionFor(client, taskQueue);
  const a = await startBackfill(conn, s, { leaseMs: 500 });
  const b = await startBackfill(conn, s, { leaseMs: 500, workflowId: `${backfillWorkflowId(s.table, s.name)}:racer` });
  const [ra, rb] = await Promise.all([client.workflow.getHandle(a.workflowId).result(), client.workflow.getHandle(b.workflowId).result()]);
  expect(ra.state).toBe('completed');
  expect(rb.state).toBe('completed');
  expect(await distribution(pool, table)).toEqual({ '1': total });
  const chain = await checkpointChain(pool, table, s.name);
  expect(chain.problems).toEqual([]);
  // both really worked the same partitions, and between them every row was applied by exactly one lease
  const [rowsA, rowsB] = [
    await leaseRows(client.workflow.getHandle(a.workflowId)),
    await leaseRows(client.workflow.getHandle(b.workflowId)),
  ];
  expect(rowsA).toBeGreaterThan(0);
  expect(rowsB).toBeGreaterThan(0);
  expect(rowsA + rowsB).toBe(total);
  expect(chain.workers).toHaveLength(2);
  recordFacts('two workflows and two workers racing over one backfill', {
    rows: total,
    rowsByFirstWorkflow: rowsA,
    rowsBySecondWorkflow: rowsB,
    rowsChangedTwice: 0,
  });
});

function peakRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024);
}

test('twenty small backfills at once on one worker: all complete, none starves, memory stays bounded', async () => {
  const n = 20;
  const rows = 5_000;
  const taskQueue = unique('q');
  const w = worker(taskQueue, { LOG_LEVEL: 'info' });
  await waitFor('worker polling', async () => w.output().includes('worker started'), 60_000);
  const specs = await Promise.all(
    Array.from({ length: n }, async () =>
      counterSpec(await makeCounterTable(pool, unique('t'), rows), { chunkSize: 250, throttle: { maxRowsPerSecond: 2000 } }),
    ),
  );
  const conn = connectionFor(client, taskQueue);
  const runs = await Promise.all(specs.map((s) => startBackfill(conn, s, { leaseMs: 1000 })));
  const results = await Promise.all(runs.map((r) => client.workflow.getHandle(r.workflowId).result()));
  const peak = peakRssMb(w.pid!);

  expect(results.map((r) => r.state)).toEqual(Array(n).fill('completed'));
  const spans: { first: number; last: number }[] = [];
  for (const s of specs) {
    expect(await distribution(pool, s.table)).toEqual({ '1': rows });
    const chain = await checkpointChain(pool, s.table, s.name);
    expect(chain.problems).toEqual([]);
    const times = chain.checkpoints.map((c) => c.committed_at.getTime());
    spans.push({ first: Math.min(...times), last: Math.max(...times) });
  }
  // none starved: every backfill had committed chunks before any of them finished
  expect(Math.max(...spans.map((x) => x.first))).toBeLessThan(Math.min(...spans.map((x) => x.last)));
  expect(peak).toBeLessThan(1024);
  recordFacts('twenty backfills at once on one worker', { backfills: n, rowsEach: rows, allCompleted: true, workerPeakRssMb: peak });
});

test('PostgreSQL restarted mid-backfill, with a fast and then an immediate shutdown: the backfill completes, every row once', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-faults-pg-'));
  const port = await freePort();
  const start = () =>
    startEmbeddedPostgres({ dir: path.join(dir, 'pg'), port, logFile: path.join(dir, 'postgres.log'), settings: { fsync: 'off' } });
  let pg = await start();
  afterThisTest(() => {
    const home = fs.realpathSync(path.join(dir, 'pg'));
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  });
  afterThisTest(() => pg.stop());
  const own = createPool({ url: pg.url, max: 3, applicationName: 'stagefill-test' });
  afterThisTest(() => own.end());

  const total = 60_000;
  await own.query(`CREATE TABLE public.restart_t (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, v int)`);
  await own.query(`INSERT INTO public.restart_t (id, n, v) SELECT g, 0, g FROM generate_series(1, $1) g`, [total]);
  const table = 'public.restart_t';
  const s = counterSpec(table, { chunkSize: 500, throttle: { maxRowsPerSecond: 6000 } });
  const taskQueue = unique('q');
  const w = worker(taskQueue, { DATABASE_URL: pg.url });
  await waitFor(
    'worker migrated its schema',
    async () => (await own.query(`SELECT to_regclass('stagefill.checkpoints') AS t`)).rows[0].t,
    60_000,
  );
  const handle = await startRun(taskQueue, s, { leaseMs: 1000 }, backfillWorkflowId(s.table, s.name) + unique(':pg'));

  const atRestart: number[] = [];
  for (const mode of ['fast', 'immediate'] as const) {
    const before = atRestart.length ? atRestart[atRestart.length - 1] : 0;
    await waitFor(
      `progress before the ${mode} restart`,
      async () => (await rowsCommitted(own, table).catch(() => 0)) > before! + 3000,
      90_000,
    );
    atRestart.push(await rowsCommitted(own, table));
    if (mode === 'fast')
      await pg.stop(); // SIGINT: fast shutdown, sessions aborted, clean checkpoint
    else {
      process.kill(servicePid(pg.service), 'SIGQUIT'); // immediate shutdown: crash recovery at the next start
      await pg.service.exited;
    }
    await sleep(1500);
    pg = await start();
  }
  const { chain } = await expectCompletedOnce(handle, table, s.name, total, own);
  expect(w.exitCode).toBeNull();
  expect(chain.rows).toBe(total);
  recordFacts('PostgreSQL restarted mid-backfill (fast, then immediate shutdown)', {
    rows: total,
    rowsDoneAtRestarts: atRestart.join('/'),
    rowsChangedTwice: 0,
  });
});

test('the worker SIGKILLed while it prepares the backfill: another worker takes the preparation over within a heartbeat timeout, not the 10-minute start-to-close (a backfill stuck that long: npm run chaos -- --minutes 30 --seed 2026)', async () => {
  const total = 5_000;
  const table = await makeCounterTable(pool, unique('t'), total);
  const s = counterSpec(table, { chunkSize: 500 });
  const taskQueue = unique('q');
  // the test holds the backfill's name lock, so prepareBackfill waits in it while its worker is killed
  const holder = await pool.connect();
  afterThisTest(() => holder.release(true));
  await holder.query('BEGIN');
  await holder.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`stagefill.backfill:${s.table}:${s.name}`]);
  const first = worker(taskQueue);
  const { workflowId } = await startBackfill(connectionFor(client, taskQueue), s, { leaseMs: 1000 });
  await waitFor('prepareBackfill waiting in the name lock', async () =>
    Boolean(
      (
        await pool.query(
          `SELECT 1 FROM pg_stat_activity WHERE application_name = 'stagefill-worker' AND wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'`,
        )
      ).rowCount,
    ),
  );
  first.kill('SIGKILL');
  await exited(first);
  const killedAt = Date.now();
  worker(taskQueue);
  await holder.query('COMMIT');
  await expectCompletedOnce(client.workflow.getHandle(workflowId), table, s.name, total);
  // the server hands the attempt on after the 30 s heartbeat timeout (plus its retry backoff), well inside 10 minutes
  expect(Date.now() - killedAt).toBeLessThan(5 * 60_000);
});
