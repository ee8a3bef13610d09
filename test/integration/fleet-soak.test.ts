import { catalogOf } from '../../chaos/sql';
import { useStack, dir, unique, client } from './harness';
import { runCli, cliEnv } from './cli-harness';
import type { Tenants } from './fleet-harness';
import { startTenants, makeTenantTables, startFleetSpec, fleetProgress, waitForFleet, doubleChange } from './fleet-harness';

/**
 * A wave's soak (`soak:` on a wave): after the wave's targets completed, its checks run on each of them, on the
 * target's own queue, for the soak's duration; a breach fails that target per the wave's policy. Three tenants: wave
 * "first" takes t0 and t1 and soaks, "second" takes t2.
 */
useStack({ dir: 'fleet-soak' });

let t: Tenants;
beforeAll(async () => {
  t = await startTenants(3, dir, () => ({ env: 'prod' }));
}, 180_000);
afterAll(async () => t?.stop());

const waves = (table: string) => [
  {
    name: 'first',
    names: ['t0', 't1'],
    parallelism: 2,
    soak: {
      duration: '3s',
      every: '1s',
      checks: [{ name: 'no big v', sql: `SELECT count(*) FROM public."${table}" WHERE v > 1000`, expect: { eq: 0 } }],
    },
  },
  { name: 'second', names: ['t2'] },
];

test('a soak check breached on one target halts the fleet, names it and the cause, and leaves the next wave untouched; retry soaks again', async () => {
  const table = unique('sb');
  await makeTenantTables(t, table, 20);
  // the change's own gate (no negative v) passes everywhere; the wave's soak check finds t1's row
  await t.db('t1').query(`UPDATE public."${table}" SET v = 5000 WHERE id = 4`);
  const t2Before = await catalogOf(t.db('t2'), `public.${table}`);
  const { handle } = await startFleetSpec(t, { change: doubleChange(table), waves: waves(table) });
  const id = handle.workflowId;
  const p = await waitForFleet(handle, 'the fleet to halt', (x) => x.state === 'halted');
  expect(p.waves.map((w) => [w.name, w.state])).toEqual([
    ['first', 'halted'],
    ['second', 'pending'],
  ]);
  expect(p.failed).toEqual([
    { target: 't1', wave: 'first', cause: expect.stringMatching(/soak of wave "first".*check "no big v" got 1, expected = 0/) },
  ]);
  expect(p.targets.map((x) => [x.name, x.state])).toEqual([
    ['t0', 'completed'],
    ['t1', 'failed'],
    ['t2', 'pending'],
  ]);
  // the operator's view names the target and the cause
  const status = await runCli(['status', id, '--json'], cliEnv(t.taskQueue));
  expect(status.code).toBe(0);
  const json = JSON.parse(status.stdout) as { state: string; failed: { target: string; cause: string }[]; lastError: string };
  expect(json.state).toBe('halted');
  expect(json.failed).toEqual([{ target: 't1', wave: 'first', cause: expect.stringMatching(/"no big v" got 1/) }]);
  expect(json.lastError).toMatch(/wave "first" halted: 1 target failed.*t1: soak of wave "first"/);
  // no later wave's target was touched: its change never started, its catalog is as before
  await expect(client.workflow.getHandle(`${id}/t2/change`).describe()).rejects.toThrow();
  expect(await catalogOf(t.db('t2'), `public.${table}`)).toEqual(t2Before);

  // fixed and retried: t1's change completed, so it is soaked again (not changed again: a second addColumn would
  // fail), the soak passes, and the fleet goes on to t2
  await t.db('t1').query(`UPDATE public."${table}" SET v = 4 WHERE id = 4`);
  expect((await runCli(['retry', id], cliEnv(t.taskQueue))).code).toBe(0);
  expect(((await handle.result()) as { state: string }).state).toBe('completed');
  const end = await fleetProgress(handle);
  expect(end.targets.map((x) => [x.name, x.state, x.attempt])).toEqual([
    ['t0', 'completed', 1],
    ['t1', 'completed', 1],
    ['t2', 'completed', 1],
  ]);
}, 600_000);

test('a soak that passes: the checks run on every target of the wave, round after round, and only then the next wave starts', async () => {
  const table = unique('sp');
  await makeTenantTables(t, table, 20);
  const { handle } = await startFleetSpec(t, { change: doubleChange(table), waves: waves(table) });
  expect(((await handle.result()) as { state: string }).state).toBe('completed');
  const events = (await handle.fetchHistory()).events ?? [];
  const soakRounds = (target: string) =>
    events.filter(
      (e) =>
        e.activityTaskScheduledEventAttributes?.activityType?.name === 'runWaveChecks' &&
        e.activityTaskScheduledEventAttributes.taskQueue?.name === `${t.taskQueue}@${target}`,
    ).length;
  // 3s every 1s: a round at the start and at least one more, on each target of the soaking wave, none elsewhere
  expect(soakRounds('t0')).toBeGreaterThanOrEqual(2);
  expect(soakRounds('t1')).toBe(soakRounds('t0'));
  expect(soakRounds('t2')).toBe(0);
  // the second wave's target started after the last round of the soak
  const lastRound = events.reduce(
    (last, e, k) => (e.activityTaskScheduledEventAttributes?.activityType?.name === 'runWaveChecks' ? k : last),
    -1,
  );
  const t2Started = events.findIndex((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId?.endsWith('/t2'));
  expect(lastRound).toBeGreaterThan(0);
  expect(t2Started).toBeGreaterThan(lastRound);
}, 600_000);
