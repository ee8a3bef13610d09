import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startEmbeddedPostgres, freePort } from '../../devstack';
import type { EmbeddedPostgres } from '../../devstack/postgres';
import { catalogOf } from '../../chaos/sql';
import { useStack, dir, unique, client, waitFor, spawnWorker, exited } from './harness';
import { runCli, cliEnv } from './cli-harness';
import type { Tenants, TenantOf } from './fleet-harness';
import { startTenantsOf, makeTenantTables, startFleetSpec, fleetProgress, waitForFleet, doubleChange } from './fleet-harness';

/**
 * A fleet over two PostgreSQL clusters: 20 tenant databases in the run's PostgreSQL and 2 in a second instance
 * this file starts. Waves of a rollout and of a backfill, a gate failure that halts its wave and a `retry` after the
 * row is fixed, and a worker process SIGKILLed mid-wave while one target's cluster is stopped. Tables are small; the
 * tenants are shared.
 */
useStack({ dir: 'fleet-clusters' });

let second: EmbeddedPostgres;
let secondPort: number;
const startSecond = () =>
  startEmbeddedPostgres({
    dir: path.join(dir, 'pg2'),
    port: secondPort,
    logFile: path.join(dir, 'pg2.log'),
    settings: { fsync: 'off', synchronous_commit: 'off', max_connections: 100 },
  });

let t: Tenants;
beforeAll(async () => {
  secondPort = await freePort();
  second = await startSecond();
  // t0 is staging; b0 and b1 live on the second cluster
  const tenants: TenantOf[] = [
    ...Array.from({ length: 20 }, (_, i) => ({ name: `t${i}`, tags: { env: i === 0 ? 'staging' : 'prod', cluster: 'a' } })),
    ...[0, 1].map((i) => ({ name: `b${i}`, serverUrl: second.url, tags: { env: 'prod', cluster: 'b' } })),
  ];
  t = await startTenantsOf(tenants, dir);
}, 300_000);
afterAll(async () => {
  await t?.stop();
  await second?.stop();
  const home = path.join(dir, 'pg2');
  if (fs.existsSync(home)) fs.rmSync(fs.realpathSync(home), { recursive: true, force: true });
});

// names sort b0, b1, t0, t1, t10..t19, t2..t9: after staging (t0) and the canary (t1), "half" takes b0, b1, t10..t17
const WAVES = [
  { name: 'staging', tags: { env: 'staging' } },
  { name: 'canary', names: ['t1'] },
  { name: 'half', share: '50%', parallelism: 4 },
  { name: 'rest', share: 'rest', parallelism: 4 },
];

const catalogs = async (table: string, names: string[]) =>
  Object.fromEntries(await Promise.all(names.map(async (n) => [n, await catalogOf(t.db(n), `public.${table}`)] as const)));

/** Every named target holds the change: w = v * 2 on every row, a bigint column, no trigger of stagefill's left. */
async function expectChanged(table: string, names: string[], rows: number): Promise<void> {
  for (const n of names) {
    const { rows: r } = await t
      .db(n)
      .query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE w IS DISTINCT FROM v * 2)::int AS bad FROM public."${table}"`);
    const { rows: col } = await t
      .db(n)
      .query(`SELECT data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = 'w'`, [
        table,
      ]);
    const { rows: trig } = await t
      .db(n)
      .query(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal`, [`public."${table}"`]);
    expect({ target: n, ...r[0], type: col[0]?.data_type, triggers: trig[0].n }).toEqual({
      target: n,
      n: rows,
      bad: 0,
      type: 'bigint',
      triggers: 0,
    });
  }
}

test('22 targets on two clusters: staging, a canary and two more waves, every target completed with catalog and data right', async () => {
  const table = unique('acc');
  await makeTenantTables(t, table, 20);
  const { handle } = await startFleetSpec(t, { change: doubleChange(table), waves: WAVES });
  const result = (await handle.result()) as { state: string };
  expect(result.state).toBe('completed');
  const p = await fleetProgress(handle);
  expect(p.waves.map((w) => [w.name, w.targets, w.counts.completed])).toEqual([
    ['staging', 1, 1],
    ['canary', 1, 1],
    ['half', 10, 10],
    ['rest', 10, 10],
  ]);
  const waveOf = (n: string) => p.targets.find((x) => x.name === n)?.wave;
  expect([waveOf('t0'), waveOf('t1'), waveOf('b0'), waveOf('b1'), waveOf('t9')]).toEqual(['staging', 'canary', 'half', 'half', 'rest']);
  expect(p.targets.every((x) => x.attempt === 1)).toBe(true);
  await expectChanged(table, t.names, 20);
}, 900_000);

test('a backfill across the fleet: every target of both clusters has each row changed exactly once', async () => {
  const table = unique('bfl');
  await makeTenantTables(t, table, 30);
  const change = {
    kind: 'backfill',
    name: unique('bf'),
    table: `public.${table}`,
    key: 'id',
    chunkSize: 7,
    parallelism: 2,
    transform: `UPDATE public."${table}" SET n = n + 1 WHERE id >= :lo AND id < :hi`,
  };
  const { handle } = await startFleetSpec(t, {
    change,
    waves: [
      { name: 'staging', tags: { env: 'staging' } },
      { name: 'all', share: 'rest', parallelism: 6 },
    ],
  });
  expect(((await handle.result()) as { state: string }).state).toBe('completed');
  const p = await fleetProgress(handle);
  expect(p.waves.map((w) => [w.name, w.targets, w.counts.completed])).toEqual([
    ['staging', 1, 1],
    ['all', 21, 21],
  ]);
  for (const n of t.names) {
    const { rows } = await t.db(n).query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE n <> 1)::int AS bad FROM public."${table}"`);
    expect({ target: n, ...rows[0] }).toEqual({ target: n, n: 30, bad: 0 });
  }
}, 900_000);

test('a gate failing on one target halts its wave, that target rolls back identical, the later wave is untouched; retry after the fix goes on', async () => {
  const table = unique('gate');
  await makeTenantTables(t, table, 20);
  // b1, on the second cluster, is in wave "half"; "rest" takes t18, t19, t2..t9
  await t.db('b1').query(`UPDATE public."${table}" SET v = -1 WHERE id = 7`);
  const rest = ['t18', 't19', 't2', 't3', 't4', 't5', 't6', 't7', 't8', 't9'];
  const before = await catalogs(table, ['b1', ...rest]);
  const { handle } = await startFleetSpec(t, { change: doubleChange(table), waves: WAVES });
  const p = await waitForFleet(handle, 'the fleet to halt', (x) => x.state === 'halted', 600_000);
  expect(p.currentWave).toBe('half');
  expect(p.failed).toEqual([{ target: 'b1', wave: 'half', cause: expect.stringMatching(/no negative v/) }]);
  expect(p.waves.find((w) => w.name === 'rest')?.counts).toMatchObject({ pending: 10, running: 0, completed: 0 });
  const after = await catalogs(table, ['b1', ...rest]);
  for (const n of ['b1', ...rest]) expect({ target: n, catalog: after[n] }).toEqual({ target: n, catalog: before[n] });
  const { rows } = await t.db('b1').query(`SELECT count(*)::int AS n FROM public."${table}" WHERE v = -1`);
  expect(rows[0].n).toBe(1); // rolled back: the data as it was, the bad row included

  const status = await runCli(['status', handle.workflowId, '--json'], cliEnv(t.taskQueue));
  expect(status.code).toBe(0);
  const json = JSON.parse(status.stdout) as { state: string; failed: { target: string; wave: string; cause: string }[] };
  expect(json.state).toBe('halted');
  expect(json.failed).toEqual([{ target: 'b1', wave: 'half', cause: expect.stringMatching(/no negative v/) }]);

  // the operator fixes the row and retries: b1 runs again, the fleet goes on through "rest"
  await t.db('b1').query(`UPDATE public."${table}" SET v = 7 WHERE id = 7`);
  expect((await runCli(['retry', handle.workflowId, '--reason', 'row fixed'], cliEnv(t.taskQueue))).code).toBe(0);
  expect(((await handle.result()) as { state: string }).state).toBe('completed');
  const end = await fleetProgress(handle);
  expect(end.targets.find((x) => x.name === 'b1')).toMatchObject({ state: 'completed', attempt: 2 });
  expect(end.targets.filter((x) => x.name !== 'b1').every((x) => x.state === 'completed' && x.attempt === 1)).toBe(true);
  await expectChanged(table, t.names, 20);
}, 900_000);

test('the worker SIGKILLed mid-wave and one cluster stopped for a while: the stopped target is shown held with its cause, no target runs twice, the fleet completes', async () => {
  // tenants of its own, served only by `stagefill worker` processes (dist/): k0..k3 here, k4 on the second cluster
  const own = await startTenantsOf(
    [
      ...[0, 1, 2, 3].map((i) => ({ name: `k${i}`, tags: { cluster: 'a' } })),
      { name: 'k4', serverUrl: second.url, tags: { cluster: 'b' } },
    ],
    dir,
    { inProcessWorkers: false },
  );
  const workers: ChildProcess[] = [];
  const spawn = () => {
    const w = spawnWorker(own.taskQueue, { STAGEFILL_TARGETS: own.targetsFile, STAGEFILL_FLEET_MAX_CONNECTIONS: '20' });
    workers.push(w);
    return w;
  };
  try {
    const table = unique('kill');
    await makeTenantTables(own, table, 300);
    // k4 has more to backfill: it is still running when its cluster stops
    await own.db('k4').query(`INSERT INTO public."${table}" (id, v) SELECT g, g FROM generate_series(301, 3000) g`);
    const first = spawn();
    const change = doubleChange(table, { chunkSize: 5 });
    const { handle } = await startFleetSpec(own, {
      change,
      waves: [
        { name: 'first', names: ['k0'] },
        { name: 'second', names: ['k1', 'k2', 'k3', 'k4'], parallelism: 4 },
      ],
    });
    // mid-wave: the second wave's changes are running, k4's among them
    await waitForFleet(
      handle,
      'the second wave to run',
      (x) => x.currentWave === 'second' && x.targets.find((k) => k.name === 'k4')?.state === 'running',
      600_000,
    );
    first.kill('SIGKILL');
    await exited(first);
    await second.stop();
    spawn();

    // k4's database does not answer: its change waits, its pending activity carrying the connection's error
    const changeId = `${handle.workflowId}/k4/change`;
    const cause = await waitFor(
      "k4's change to show why it waits",
      async () => {
        const d = await client.workflow.getHandle(changeId).describe();
        const failures = (d.raw.pendingActivities ?? []).map((a) => a.lastFailure?.message ?? '');
        return failures.find((m) => /does not answer|ECONNREFUSED|terminating connection|Connection terminated|connect/i.test(m));
      },
      300_000,
      1000,
    );
    expect(cause).toBeTruthy();
    const held = await fleetProgress(handle);
    expect(held.state).toBe('running');
    expect(held.targets.find((x) => x.name === 'k4')?.state).toBe('running');
    // `status` shows it held, counted as waiting in its wave, with the cause (the connection's error)
    const CONNECTION = /does not answer|ECONNREFUSED|terminating connection|Connection terminated|connect/i;
    const shown = await waitFor(
      'status --json to show k4 held with its cause',
      async () => {
        const r = await runCli(['status', handle.workflowId, '--json'], cliEnv(own.taskQueue));
        const s = JSON.parse(r.stdout) as {
          held: { target: string; wave: string; cause: string }[];
          waves: { name: string; counts: { waiting: number } }[];
        };
        return s.held.some((h) => h.target === 'k4' && CONNECTION.test(h.cause)) && s;
      },
      300_000,
      2000,
    );
    expect(shown.held.find((h) => h.target === 'k4')).toEqual({ target: 'k4', wave: 'second', cause: expect.stringMatching(CONNECTION) });
    expect(shown.waves.find((w) => w.name === 'second')?.counts.waiting).toBeGreaterThanOrEqual(1);
    const text = await runCli(['status', handle.workflowId], cliEnv(own.taskQueue));
    expect(text.stdout).toMatch(/held targets \(waiting: retried until the cause clears\):\n {2}k4 \(wave second\): /);
    expect(text.stdout).toMatch(/ held: k4/);

    second = await startSecond();
    expect(((await handle.result()) as { state: string }).state).toBe('completed');
    const p = await fleetProgress(handle);
    expect(p.targets.map((x) => [x.name, x.state, x.attempt])).toEqual(own.names.map((n) => [n, 'completed', 1]));
    for (const n of own.names) {
      // one rollout per target, begun once: no change ran twice
      const { rows } = await own.db(n).query(`SELECT count(*)::int AS n FROM stagefill.rollouts WHERE name = $1`, [change.name]);
      expect({ target: n, rollouts: rows[0].n }).toEqual({ target: n, rollouts: 1 });
      const { rows: data } = await own
        .db(n)
        .query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE w IS DISTINCT FROM v * 2)::int AS bad FROM public."${table}"`);
      expect({ target: n, ...data[0] }).toEqual({ target: n, n: n === 'k4' ? 3000 : 300, bad: 0 });
    }
  } finally {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await own.stop();
  }
}, 900_000);
