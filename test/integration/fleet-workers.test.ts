import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { ChildProcess } from 'node:child_process';
import { useStack, dir, unique, spawnWorker, waitFor } from './harness';
import { runCli, cliEnv } from './cli-harness';
import type { Tenants } from './fleet-harness';
import { startTenantsOf, makeTenantTables, startFleetSpec, fleetProgress, doubleChange } from './fleet-harness';

/**
 * Targets split over worker processes: two `stagefill worker` processes (dist/) on one task queue, each with a
 * targets file of its own (p0..p2 and p3..p5, as a worker per cluster would have). `stagefill targets` and `plan`
 * (asked of the workers, no targets file) list all six, and a fleet whose waves take targets of both completes.
 */
useStack({ dir: 'fleet-workers' });

let t: Tenants;
const workers: ChildProcess[] = [];
beforeAll(async () => {
  t = await startTenantsOf(
    Array.from({ length: 6 }, (_, i) => ({ name: `p${i}`, tags: { side: i < 3 ? 'a' : 'b' } })),
    dir,
    { inProcessWorkers: false },
  );
  const file = YAML.parse(fs.readFileSync(t.targetsFile, 'utf8')) as Record<string, unknown>;
  for (const [side, names] of [
    ['a', ['p0', 'p1', 'p2']],
    ['b', ['p3', 'p4', 'p5']],
  ] as const) {
    const own = path.join(dir, `targets-${side}.yaml`);
    fs.writeFileSync(own, YAML.stringify(Object.fromEntries(names.map((n) => [n, file[n]]))));
    workers.push(spawnWorker(t.taskQueue, { STAGEFILL_TARGETS: own, STAGEFILL_FLEET_MAX_CONNECTIONS: '12' }));
  }
}, 300_000);
afterAll(async () => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  await t?.stop();
});

interface Listed {
  name: string;
  tags: Record<string, string>;
  answers: boolean;
  workers: string[];
}

test('two worker processes with disjoint targets files: `targets` and `plan` list every target, and a fleet over both completes', async () => {
  // both processes answer once they poll: every target, each served by its own process
  const listed = await waitFor(
    'both worker processes to answer `stagefill targets`',
    async () => {
      const r = await runCli(['targets', '--json'], cliEnv(t.taskQueue));
      if (r.code !== 0) return false;
      const list = JSON.parse(r.stdout) as Listed[];
      return list.length === 6 && list;
    },
    240_000,
    2000,
  );
  expect(listed.map((x) => [x.name, x.tags.side, x.answers])).toEqual(t.names.map((n, i) => [n, i < 3 ? 'a' : 'b', true]));
  const [a, b] = [listed[0]!.workers, listed[3]!.workers];
  expect(a).toHaveLength(1);
  expect(b).toHaveLength(1);
  expect(a).not.toEqual(b);
  expect(listed.slice(0, 3).every((x) => x.workers[0] === a[0])).toBe(true);
  expect(listed.slice(3).every((x) => x.workers[0] === b[0])).toBe(true);
  const text = await runCli(['targets'], cliEnv(t.taskQueue));
  expect(text.code).toBe(0);
  expect(text.stdout).not.toContain('postgres://');

  const table = unique('split');
  await makeTenantTables(t, table, 40);
  // p4 differs: `plan`, asked of the workers, reads every target's table through the process serving it
  await t.db('p4').query(`ALTER TABLE public."${table}" ADD COLUMN extra text`);
  const waves = [
    { name: 'first', names: ['p0', 'p3'] },
    { name: 'rest', share: 'rest', parallelism: 4 },
  ];
  const specFile = path.join(dir, `${table}.yaml`);
  fs.writeFileSync(specFile, YAML.stringify({ kind: 'fleet', name: unique('splitfleet'), change: doubleChange(table), waves }));
  const plan = await runCli(['plan', specFile], cliEnv(t.taskQueue));
  expect(plan.code).toBe(2);
  expect(plan.stdout).toMatch(/1\. first \(names p0, p3\): 2 targets/);
  expect(plan.stdout).toMatch(/2\. rest \(the rest\): 4 targets/);
  expect(plan.stdout).toContain('p1, p2, p4, p5');
  expect(plan.stdout).toMatch(/p4: extra column extra text/);
  await t.db('p4').query(`ALTER TABLE public."${table}" DROP COLUMN extra`);
  const planned = await runCli(['plan', specFile, '--json'], cliEnv(t.taskQueue));
  expect(planned.code).toBe(0);
  expect((JSON.parse(planned.stdout) as { differences: unknown[] }).differences).toEqual([]);

  // the fleet: its first wave takes a target of each process, and every target completes with its data right
  const { handle } = await startFleetSpec(t, { change: doubleChange(table), waves });
  expect(((await handle.result()) as { state: string }).state).toBe('completed');
  const p = await fleetProgress(handle);
  expect(p.targets.map((x) => [x.name, x.wave, x.state])).toEqual([
    ['p0', 'first', 'completed'],
    ['p3', 'first', 'completed'],
    ['p1', 'rest', 'completed'],
    ['p2', 'rest', 'completed'],
    ['p4', 'rest', 'completed'],
    ['p5', 'rest', 'completed'],
  ]);
  for (const n of t.names) {
    const { rows } = await t
      .db(n)
      .query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE w IS DISTINCT FROM v * 2)::int AS bad FROM public."${table}"`);
    expect({ target: n, ...rows[0] }).toEqual({ target: n, n: 40, bad: 0 });
  }
}, 900_000);
