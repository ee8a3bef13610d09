import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { useStack, dir, unique, client, pool, waitFor, env } from './harness';
import { runCli, cliEnv } from './cli-harness';
import { progressQuery } from '../../workflows/definitions';
import { startTenants, makeTenantTables, doubleChange, type Tenants } from './fleet-harness';

/**
 * The operator's side of a fleet, through the CLI as a process: targets chosen
 * by a catalog query (resolved by `plan` and `start`, names only in the
 * workflow's history), and `status`/`watch`/`list`/`history` of a fleet.
 */
useStack({ dir: 'fleet-views' });

let t: Tenants;
beforeAll(async () => {
  // t0 is staging; t1..t4 production
  t = await startTenants(5, dir, (i) => ({ env: i === 0 ? 'staging' : 'prod' }));
}, 180_000);
afterAll(async () => t?.stop());

/** A catalog table in the run's main database: the tenants and whether each is active. */
async function makeCatalog(active: Record<string, boolean>): Promise<string> {
  const table = unique('tenants');
  await pool.query(`CREATE TABLE public."${table}" (name text PRIMARY KEY, active boolean NOT NULL)`);
  for (const [name, isActive] of Object.entries(active))
    await pool.query(`INSERT INTO public."${table}" VALUES ($1, $2)`, [name, isActive]);
  return table;
}

function writeFleet(spec: Record<string, unknown>): { file: string; name: string } {
  const name = unique('vf');
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, YAML.stringify({ kind: 'fleet', name, ...spec }));
  return { file, name };
}

const hasColumnW = async (n: string, table: string) =>
  (
    await t.pools[n]!.query(`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = $1 AND column_name = 'w'`, [
      table,
    ])
  ).rows[0].n === 1;

/** A workflow's history with every payload decoded: what anyone reading the history would see. */
async function historyText(workflowId: string): Promise<string> {
  const h = await client.workflow.getHandle(workflowId).fetchHistory();
  return JSON.stringify(h, (k, v: unknown) => {
    if (k !== 'data' || typeof v !== 'string') return v;
    const text = Buffer.from(v, 'base64').toString('utf8');
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  });
}

interface FleetJson {
  state: string;
  currentWave: string | null;
  waves: { name: string; targets: number; counts: Record<string, number> }[];
  targets: { name: string; state: string }[];
  rows: { done: number; total: number; rowsPerSecond: number; targets: number };
  etaSeconds: number | null;
}

test('targets by a catalog query: plan and start resolve it, the waves pick among its names, the history holds names only', async () => {
  const table = unique('q');
  await makeTenantTables(t, table, 30);
  // t2 is inactive in the catalog: not in the fleet, though the workers serve it
  const catalog = await makeCatalog({ t0: true, t1: true, t2: false, t3: true, t4: true });
  const { file, name } = writeFleet({
    targets: { query: `SELECT name FROM public."${catalog}" WHERE active ORDER BY name`, catalogEnv: 'CATALOG_URL', timeout: '10s' },
    change: doubleChange(table, { gate: false }),
    waves: [
      { name: 'staging', tags: { env: 'staging' } },
      { name: 'rest', share: 'rest', parallelism: 2 },
    ],
  });
  const cliE = cliEnv(t.taskQueue, { CATALOG_URL: env().databaseUrl, STAGEFILL_TARGETS: t.targetsFile });

  const plan = await runCli(['plan', file, '--json'], cliE);
  expect(plan.code).toBe(0);
  const planned = JSON.parse(plan.stdout) as { queried: string[]; waves: { name: string; targets: string[] }[] };
  expect(planned.queried).toEqual(['t0', 't1', 't3', 't4']);
  expect(planned.waves.map((w) => [w.name, w.targets])).toEqual([
    ['staging', ['t0']],
    ['rest', ['t1', 't3', 't4']],
  ]);
  const planText = await runCli(['plan', file], cliE);
  expect(planText.stdout).toContain('targets: the 4 the catalog query returned');

  const started = await runCli(['start', file, '--json'], cliE);
  expect(started.code).toBe(0);
  const { workflowId } = JSON.parse(started.stdout) as { workflowId: string };
  expect(workflowId).toBe(`stagefill-fleet:${name}`);
  // the catalog changes after start: the running fleet keeps the names start resolved
  await pool.query(`UPDATE public."${catalog}" SET active = true`);
  const result = (await client.workflow.getHandle(workflowId).result()) as { state: string };
  expect(result.state).toBe('completed');
  for (const n of ['t0', 't1', 't3', 't4']) {
    const { rows } = await t.pools[n]!.query(`SELECT count(*) FILTER (WHERE w = v * 2)::int AS ok FROM public."${table}"`);
    expect({ target: n, ok: rows[0].ok }).toEqual({ target: n, ok: 30 });
  }
  expect(await hasColumnW('t2', table)).toBe(false);

  // the pinned waves are in the history, by name; no connection string is (booleans: the history is long)
  const history = await historyText(workflowId);
  expect(history.includes('"select":{"names":["t1","t3","t4"]}')).toBe(true);
  expect(history.includes('postgres://')).toBe(false);
  expect(history.includes(new URL(env().databaseUrl).host)).toBe(false);
}, 600_000);

test('targets by a catalog query: every wrong query is refused before anything starts, naming why', async () => {
  const table = unique('qe');
  await makeTenantTables(t, table, 5);
  const catalog = await makeCatalog({ t1: true, nope: true, gone: true });
  const change = doubleChange(table, { gate: false });
  const waves = [{ name: 'all', share: 'rest' }];
  const cliE = cliEnv(t.taskQueue, { CATALOG_URL: env().databaseUrl, STAGEFILL_TARGETS: t.targetsFile });
  const run = async (targets: Record<string, unknown>, verb = 'plan') => runCli([verb, writeFleet({ targets, change, waves }).file], cliE);

  const unknown = await run({ query: `SELECT name FROM public."${catalog}" ORDER BY name`, catalogEnv: 'CATALOG_URL' }, 'start');
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toMatch(/targets\.query: returned 2 names no target of \S+ has: gone, nope; add them to the targets file/);

  // READ ONLY: a query that writes fails, and so does a second statement after it; the catalog is as it was
  const writes = await run({ query: `UPDATE public."${catalog}" SET active = false RETURNING name`, catalogEnv: 'CATALOG_URL' });
  expect(writes.code).toBe(2);
  expect(writes.stderr).toMatch(
    /targets\.query: failed on the catalog \(\$CATALOG_URL\): cannot execute UPDATE in a read-only transaction/,
  );
  const twoStatements = await run({ query: `SELECT 't1'; DELETE FROM public."${catalog}"`, catalogEnv: 'CATALOG_URL' });
  expect(twoStatements.code).toBe(2);
  expect(twoStatements.stderr).toMatch(/cannot insert multiple commands into a prepared statement/);
  const { rows } = await pool.query(`SELECT count(*) FILTER (WHERE active)::int AS n FROM public."${catalog}"`);
  expect(rows[0].n).toBe(3);

  const slow = await run({ query: `SELECT 't1' FROM pg_sleep(5)`, catalogEnv: 'CATALOG_URL', timeout: '300ms' });
  expect(slow.code).toBe(2);
  expect(slow.stderr).toMatch(/canceling statement due to statement timeout/);

  const noCatalog = await run({ query: 'SELECT 1', catalog: 'nosuch' });
  expect(noCatalog.code).toBe(2);
  expect(noCatalog.stderr).toMatch(/targets\.catalog: no target named "nosuch" in/);
  const noEnv = await run({ query: 'SELECT 1', catalogEnv: 'STAGEFILL_TEST_NO_SUCH_VAR' });
  expect(noEnv.code).toBe(2);
  expect(noEnv.stderr).toMatch(/targets\.catalogEnv: STAGEFILL_TEST_NO_SUCH_VAR is not set/);

  // the catalog as a target of the targets file: t1's own database lists t3 and t4
  await t.pools.t1!.query(`CREATE TABLE public."${catalog}" (name text)`);
  await t.pools.t1!.query(`INSERT INTO public."${catalog}" VALUES ('t3'), ('t4')`);
  const onTarget = await run({ query: `SELECT name FROM public."${catalog}"`, catalog: 't1' });
  expect(onTarget.code).toBe(0);
  expect(onTarget.stdout).toMatch(/1\. all \(the rest\): 2 targets/);
  expect(onTarget.stdout).toContain('t3, t4');
  // nothing of the change ran anywhere
  for (const n of t.names) expect(await hasColumnW(n, table)).toBe(false);
}, 300_000);

test('status, watch, list and history of a fleet: per-wave counts with waiting targets, rows, ETA, the fleet and its changes', async () => {
  const table = unique('v');
  await makeTenantTables(t, table, 40);
  const { file, name } = writeFleet({
    change: doubleChange(table, { approval: true, gate: false }),
    waves: [
      { name: 'canary', names: ['t1'] },
      { name: 'pair', names: ['t3', 't4'], parallelism: 2 },
    ],
  });
  const cliE = cliEnv(t.taskQueue, { STAGEFILL_TARGETS: t.targetsFile });
  const started = await runCli(['start', file], cliE);
  expect(started.code).toBe(0);
  const id = started.stdout.trim();
  const changeState = async (n: string) =>
    ((await client.workflow.getHandle(`${id}/${n}/change`).query(progressQuery)) as { state: string }).state;
  const status = async () => JSON.parse((await runCli(['status', id, '--json'], cliE)).stdout) as FleetJson;

  // the canary's rollout waits at its approval: the fleet shows it waiting, not running; no ETA can be timed yet
  await waitFor('the canary to wait for approval', async () => (await changeState('t1')) === 'waiting_approval', 240_000, 500);
  const first = await status();
  expect(first.state).toBe('running');
  expect(first.currentWave).toBe('canary');
  expect(first.waves.map((w) => [w.name, w.counts.running, w.counts.waiting, w.counts.pending])).toEqual([
    ['canary', 0, 1, 0],
    ['pair', 0, 0, 2],
  ]);
  expect(first.etaSeconds).toBeNull();
  expect(first.rows).toEqual(expect.objectContaining({ done: expect.any(Number), total: expect.any(Number) }));
  const text = await runCli(['status', id], cliE);
  expect(text.stdout).toMatch(/canary\s+1 targets, parallelism 1: pending 0, running 0, waiting 1, completed 0/);
  expect(text.stdout).toContain('ETA --');

  expect((await runCli(['approve', `${id}/t1/change`], cliE)).code).toBe(0);
  // the pair waits too; with the canary timed, the fleet has an ETA
  for (const n of ['t3', 't4'])
    await waitFor(`${n} to wait for approval`, async () => (await changeState(n)) === 'waiting_approval', 240_000, 500);
  const second = await status();
  expect(second.currentWave).toBe('pair');
  expect(second.waves.map((w) => [w.name, w.counts.completed, w.counts.waiting])).toEqual([
    ['canary', 1, 0],
    ['pair', 0, 2],
  ]);
  expect(second.etaSeconds).toEqual(expect.any(Number));

  // list: the fleet by kind, and the fleet with its targets' changes by name
  const byKind = JSON.parse((await runCli(['list', '--kind', 'fleet', '--json'], cliE)).stdout) as { workflowId: string; fleet: string }[];
  expect(byKind.find((r) => r.workflowId === id)).toMatchObject({ fleet: name });
  const byFleet = JSON.parse((await runCli(['list', '--fleet', name, '--json'], cliE)).stdout) as { workflowId: string; kind: string }[];
  expect(byFleet.map((r) => [r.workflowId, r.kind]).sort()).toEqual(
    [
      [id, 'fleet'],
      [`${id}/t1/change`, 'rollout'],
      [`${id}/t3/change`, 'rollout'],
      [`${id}/t4/change`, 'rollout'],
    ].sort(),
  );
  const listText = await runCli(['list', '--fleet', name], cliE);
  expect(listText.stdout).toContain(`${id}\tfleet\tfleet ${name}\trunning`);

  for (const n of ['t3', 't4']) expect((await runCli(['approve', `${id}/${n}/change`], cliE)).code).toBe(0);
  const watched = await runCli(['watch', id, '--json'], cliE, 300_000);
  expect(watched.code).toBe(0);
  const lines = watched.stdout.trim().split('\n');
  expect(JSON.parse(lines[lines.length - 1]!)).toEqual({ workflowId: id, state: 'completed', workflowStatus: 'COMPLETED', exitCode: 0 });
  const last = JSON.parse(lines[lines.length - 2]!) as FleetJson;
  expect(last.etaSeconds).toBe(0);
  expect(last.waves.map((w) => w.counts.completed)).toEqual([1, 2]);

  // history: each target's audit, from its own database; the targets not in the fleet have none
  const history = await runCli(['history', id, '--json'], cliE);
  expect(history.code).toBe(0);
  const h = JSON.parse(history.stdout) as {
    targets: { target: string; workflowId: string; events: { event: string; actor: string | null }[] }[];
    untouched: string[];
  };
  expect(h.targets.map((x) => [x.target, x.workflowId])).toEqual(['t1', 't3', 't4'].map((n) => [n, `${id}/${n}/change`]));
  for (const x of h.targets) expect(x.events.map((e) => e.event)).toContain('approved');
  expect(h.untouched).toEqual(['t0', 't2']);
  const historyText = await runCli(['history', id], cliE);
  expect(historyText.stdout).toMatch(/== t3 \(.*\/t3\/change\)/);
}, 600_000);

test('stagefill tenants makes the databases, runs the SQL file in each, writes the targets file and the catalog; run again it keeps them', async () => {
  const prefix = `${unique('tn').toLowerCase()}_`;
  const catalog = `public.${unique('cat')}`;
  const sqlFile = path.join(dir, `${prefix}.sql`);
  fs.writeFileSync(
    sqlFile,
    'CREATE TABLE IF NOT EXISTS public.orders (id bigint PRIMARY KEY);\nINSERT INTO public.orders VALUES (1), (2) ON CONFLICT DO NOTHING;\n',
  );
  const out = path.join(dir, `${prefix}targets.yaml`);
  const args = [
    'tenants',
    '--count',
    '3',
    '--prefix',
    prefix,
    '--staging',
    '1',
    '--sql',
    sqlFile,
    '--out',
    out,
    '--catalog',
    catalog,
    '--json',
  ];
  try {
    const first = await runCli(args, cliEnv(t.taskQueue));
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual(
      [1, 2, 3].map((i) => ({ name: `${prefix}${i}`, tags: { env: i === 1 ? 'staging' : 'prod' }, created: true })),
    );
    const file = YAML.parse(fs.readFileSync(out, 'utf8')) as Record<string, { url: string; tags: Record<string, string> }>;
    expect(Object.keys(file)).toEqual([1, 2, 3].map((i) => `${prefix}${i}`));
    // each URL reaches its own database, with the file's table in it
    const { createPool } = await import('../../db/pool');
    for (const [name, entry] of Object.entries(file)) {
      const p = createPool({ url: entry.url, max: 1, applicationName: 'stagefill-test' });
      try {
        const { rows } = await p.query('SELECT current_database() AS db, (SELECT count(*)::int FROM public.orders) AS n');
        expect(rows[0]).toEqual({ db: name, n: 2 });
      } finally {
        await p.end();
      }
    }
    const { rows } = await pool.query(`SELECT name, active FROM ${catalog} ORDER BY name`);
    expect(rows).toEqual([1, 2, 3].map((i) => ({ name: `${prefix}${i}`, active: true })));
    const again = await runCli(args, cliEnv(t.taskQueue));
    expect(again.code).toBe(0);
    expect((JSON.parse(again.stdout) as { created: boolean }[]).map((x) => x.created)).toEqual([false, false, false]);
    const bad = await runCli(['tenants', '--prefix', 'Bad-Name', '--out', out], cliEnv(t.taskQueue));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--prefix: "Bad-Name" must be lower-case letters, digits and _/);
  } finally {
    for (const i of [1, 2, 3]) await pool.query(`DROP DATABASE IF EXISTS "${prefix}${i}" WITH (FORCE)`).catch(() => {});
  }
}, 180_000);
