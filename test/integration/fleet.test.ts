import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { WorkflowFailedError } from '@temporalio/client';
import { catalogOf } from '../../chaos/sql';
import { useStack, dir, unique, client, waitFor } from './harness';
import { runCli, cliEnv } from './cli-harness';
import { progressQuery } from '../../workflows/definitions';
import type { Tenants } from './fleet-harness';
import { startTenants, makeTenantTables, startFleetSpec, fleetProgress, waitForFleet, doubleChange } from './fleet-harness';

/**
 * A fleet over tenant databases of the run's PostgreSQL (8 here, sized for a shared 2-core machine): a failing
 * target that halts its wave, the fleet's rollback and cancel, plan's shape check. Each test makes its own table in
 * every tenant. The fleet over 22 targets on two clusters, retry and the worker killed: fleet-clusters.test.ts.
 */
useStack({ dir: 'fleet' });

let t: Tenants;
beforeAll(async () => {
  // t0 is staging; t1..t7 production
  t = await startTenants(8, dir, (i) => ({ env: i === 0 ? 'staging' : 'prod' }));
}, 180_000);
afterAll(async () => t?.stop());

const WAVES = [
  { name: 'staging', tags: { env: 'staging' } },
  { name: 'canary', names: ['t1'] },
  { name: 'half', share: '50%', parallelism: 3 },
  { name: 'rest', share: 'rest', parallelism: 2 },
];

const catalogs = async (table: string, names: string[]) =>
  Object.fromEntries(await Promise.all(names.map(async (n) => [n, await catalogOf(t.db(n), `public.${table}`)] as const)));

test('a target whose gate fails halts its wave and rolls back identical; later waves are untouched; status names it', async () => {
  const table = unique('gate');
  await makeTenantTables(t, table, 30);
  // t3 falls in wave "half" (t2, t3, t4); "rest" takes t5..t7
  await t.db('t3').query(`UPDATE public."${table}" SET v = -1 WHERE id = 7`);
  const before = await catalogs(table, t.names);
  const { handle } = await startFleetSpec(t, { change: doubleChange(table), waves: WAVES });
  const p = await waitForFleet(handle, 'the fleet to halt', (x) => x.state === 'halted');
  expect(p.currentWave).toBe('half');
  expect(p.waves.find((w) => w.name === 'half')!.state).toBe('halted');
  expect(p.failed).toEqual([{ target: 't3', wave: 'half', cause: expect.stringMatching(/no negative v/) }]);
  expect(p.lastError).toMatch(/wave "half" halted: 1 target failed.*t3/);
  // t3 rolled itself back catalog-identical; no target of the later wave was touched
  const after = await catalogs(table, ['t3', 't5', 't6', 't7']);
  for (const n of ['t3', 't5', 't6', 't7']) expect({ target: n, catalog: after[n] }).toEqual({ target: n, catalog: before[n] });
  expect(p.waves.find((w) => w.name === 'rest')!.counts).toMatchObject({ pending: 3, running: 0, completed: 0 });
  // the operator's view: status --json names the target and the cause
  const cliStatus = await runCli(['status', handle.workflowId, '--json'], cliEnv(t.taskQueue));
  expect(cliStatus.code).toBe(0);
  const json = JSON.parse(cliStatus.stdout) as { state: string; failed: { target: string; cause: string }[] };
  expect(json.state).toBe('halted');
  expect(json.failed).toEqual([{ target: 't3', wave: 'half', cause: expect.stringMatching(/no negative v/) }]);
  const text = await runCli(['status', handle.workflowId], cliEnv(t.taskQueue));
  expect(text.stdout).toMatch(/t3 \(wave half\): .*no negative v/);

  // a halted fleet waits for retry or rollback; rolled back now, it ends with nothing left running and the later wave skipped
  await handle.signal('rollback', { by: 'test' });
  const result = (await handle.result()) as { state: string };
  expect(result.state).toBe('rolled_back');
  const end = await fleetProgress(handle);
  expect(end.waves.find((w) => w.name === 'rest')!.counts).toMatchObject({ skipped: 3, completed: 0 });
  const untouched = await catalogs(table, ['t5', 't6', 't7']);
  for (const n of ['t5', 't6', 't7']) expect({ target: n, catalog: untouched[n] }).toEqual({ target: n, catalog: before[n] });
}, 600_000);

/** The change of `target` in the fleet, as its progress query answers. */
const changeState = async (fleetId: string, target: string) =>
  ((await client.workflow.getHandle(`${fleetId}/${target}/change`).query(progressQuery)) as { state: string }).state;
const waitForChange = (fleetId: string, target: string, state: string) =>
  waitFor(`${target}'s change to be ${state}`, async () => (await changeState(fleetId, target)) === state, 240_000, 500);

test('fleet rollback during the third wave: its running targets revert identical, earlier ones stay contracted, later ones untouched', async () => {
  const table = unique('rb');
  await makeTenantTables(t, table, 30);
  const before = await catalogs(table, t.names);
  const { handle } = await startFleetSpec(t, { change: doubleChange(table, { approval: true }), waves: WAVES });
  const id = handle.workflowId;
  // staging and canary: their rollouts wait at the approval step; approve each through the CLI
  for (const n of ['t0', 't1']) {
    await waitForChange(id, n, 'waiting_approval');
    expect((await runCli(['approve', `${id}/${n}/change`], cliEnv(t.taskQueue))).code).toBe(0);
  }
  // the third wave's three targets wait at their approval: the fleet shows them waiting
  for (const n of ['t2', 't3', 't4']) await waitForChange(id, n, 'waiting_approval');
  const waiting = JSON.parse((await runCli(['status', id, '--json'], cliEnv(t.taskQueue))).stdout) as {
    currentWave: string;
    waves: { name: string; counts: { waiting: number; completed: number } }[];
  };
  expect(waiting.currentWave).toBe('half');
  expect(waiting.waves.map((w) => [w.name, w.counts.completed, w.counts.waiting])).toEqual([
    ['staging', 1, 0],
    ['canary', 1, 0],
    ['half', 0, 3],
    ['rest', 0, 0],
  ]);

  expect((await runCli(['rollback', id, '--reason', 'test'], cliEnv(t.taskQueue))).code).toBe(0);
  const result = (await handle.result()) as { state: string };
  expect(result.state).toBe('rolled_back');
  const p = await fleetProgress(handle);
  const stateOf = (n: string) => p.targets.find((x) => x.name === n)!.state;
  expect(t.names.map((n) => [n, stateOf(n)])).toEqual([
    ['t0', 'completed'],
    ['t1', 'completed'],
    ['t2', 'rolled_back'],
    ['t3', 'rolled_back'],
    ['t4', 'rolled_back'],
    ['t5', 'skipped'],
    ['t6', 'skipped'],
    ['t7', 'skipped'],
  ]);
  const after = await catalogs(table, t.names);
  for (const n of ['t2', 't3', 't4', 't5', 't6', 't7']) expect({ target: n, catalog: after[n] }).toEqual({ target: n, catalog: before[n] });
  // the contracted targets keep the change
  for (const n of ['t0', 't1']) {
    const { rows } = await t.db(n).query(`SELECT count(*) FILTER (WHERE w = v * 2)::int AS ok FROM public."${table}"`);
    expect(rows[0].ok).toBe(30);
  }
  const text = await runCli(['status', id], cliEnv(t.taskQueue));
  expect(text.stdout).toMatch(/completed before the rollback \(not reversed\): t0, t1/);
}, 600_000);

test('cancel on a fleet rolls back its running targets identical, like rollback', async () => {
  const table = unique('cancel');
  await makeTenantTables(t, table, 20);
  const before = await catalogs(table, ['t5', 't6', 't7']);
  const { handle } = await startFleetSpec(t, {
    change: doubleChange(table, { approval: true }),
    waves: [
      { name: 'two', names: ['t5', 't6'], parallelism: 2 },
      { name: 'last', names: ['t7'] },
    ],
  });
  const id = handle.workflowId;
  for (const n of ['t5', 't6']) await waitForChange(id, n, 'waiting_approval');
  const cancel = await runCli(['cancel', id], cliEnv(t.taskQueue));
  expect(cancel.code).toBe(0);
  expect(((await handle.result()) as { state: string }).state).toBe('rolled_back');
  const p = await fleetProgress(handle);
  expect(p.rollbackReason).toMatch(/cancelled/);
  expect(p.targets.map((x) => [x.name, x.state])).toEqual([
    ['t5', 'rolled_back'],
    ['t6', 'rolled_back'],
    ['t7', 'skipped'],
  ]);
  const after = await catalogs(table, ['t5', 't6', 't7']);
  for (const n of ['t5', 't6', 't7']) expect({ target: n, catalog: after[n] }).toEqual({ target: n, catalog: before[n] });
}, 600_000);

test('plan names a target whose table differs; the fleet refuses it before anything starts, or skips it', async () => {
  const table = unique('shape');
  await makeTenantTables(t, table, 10);
  await t.db('t4').query(`ALTER TABLE public."${table}" ADD COLUMN extra text`);
  const specFile = path.join(dir, `${table}.yaml`);
  const fleetName = unique('shapefleet');
  fs.writeFileSync(specFile, YAML.stringify({ kind: 'fleet', name: fleetName, change: doubleChange(table), waves: WAVES }));

  const plan = await runCli(['plan', specFile, '--targets', t.targetsFile], cliEnv(t.taskQueue));
  expect(plan.code).toBe(2);
  expect(plan.stdout).toMatch(/targets whose tables differ \(the fleet is refused\):\n  t4: extra column extra text/);
  expect(plan.stdout).toMatch(/3\. half \(50% of the rest\): 3 targets, parallelism 3/);
  expect(plan.stdout).toContain('t2, t3, t4');

  const targets = await runCli(['targets', '--targets', t.targetsFile, '--json'], cliEnv(t.taskQueue));
  expect(targets.code).toBe(0);
  expect((JSON.parse(targets.stdout) as { name: string; answers: boolean }[]).map((x) => [x.name, x.answers])).toEqual(
    t.names.map((n) => [n, true]),
  );
  expect(targets.stdout).not.toContain('postgres://');

  // the workflow checks the same before its first wave: refused, no target's change ever started
  const refused = await startFleetSpec(t, { change: doubleChange(table), waves: WAVES });
  const err = await refused.handle.result().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect(String((err as WorkflowFailedError).cause?.message)).toMatch(/t4: public\.\S+ differs: extra column extra text/);
  await expect(client.workflow.getHandle(`${refused.handle.workflowId}/t0/change`).describe()).rejects.toThrow();

  // onShapeMismatch: skip leaves t4 out and changes the others
  const t4Before = await catalogOf(t.db('t4'), `public.${table}`);
  const skipped = await startFleetSpec(t, {
    change: doubleChange(table),
    onShapeMismatch: 'skip',
    waves: [{ name: 'three', names: ['t2', 't3', 't4'], parallelism: 3 }],
  });
  expect(((await skipped.handle.result()) as { state: string }).state).toBe('completed');
  const p = await fleetProgress(skipped.handle);
  expect(p.skipped).toEqual([{ target: 't4', reason: expect.stringMatching(/extra column extra text/) }]);
  expect(p.waves[0]?.counts).toMatchObject({ completed: 2, skipped: 1 });
  expect(await catalogOf(t.db('t4'), `public.${table}`)).toEqual(t4Before);
  const { rows } = await t
    .db('t4')
    .query(`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = $1 AND column_name = 'w'`, [table]);
  expect(rows[0].n).toBe(0);
}, 600_000);
