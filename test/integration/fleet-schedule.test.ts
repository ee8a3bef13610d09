import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { describeSchedule } from '../../client/schedules';
import type { FleetResult } from '../../workflows/fleet/fleet';
import { useStack, dir, unique, client, connectionFor, makeCounterTable, waitFor } from './harness';
import { runCli, cliEnv, counterBackfill } from './cli-harness';
import type { Tenants } from './fleet-harness';
import { startTenants } from './fleet-harness';

/**
 * A fleet of a backfill from a Temporal Schedule (`stagefill schedule create <fleet.yaml>`): each firing is a fleet
 * whose targets' backfills stop cleanly when the window closes; the next firing continues each from its checkpoints,
 * until one completes the fleet, every row of every tenant changed once. Two tenants.
 */
useStack({ dir: 'fleet-schedule' });

let t: Tenants;
beforeAll(async () => {
  t = await startTenants(2, dir, () => ({ env: 'prod' }));
}, 180_000);
afterAll(async () => t?.stop());

const result = (workflowId: string) => client.workflow.getHandle(workflowId).result() as Promise<FleetResult>;

test('each firing stops every target at the window end; the next continues from the checkpoints until the fleet completes', async () => {
  const rows = 6_000;
  const name = unique('sc');
  for (const n of t.names) await makeCounterTable(t.db(n), name, rows);
  const table = `public.${name}`;
  const fleetName = unique('fleetsched');
  const file = path.join(dir, `${fleetName}.yaml`);
  // ~1,000 rows/s per target against a 3s window: every target needs several firings
  fs.writeFileSync(
    file,
    YAML.stringify({
      kind: 'fleet',
      name: fleetName,
      change: counterBackfill(table, { chunkSize: 200, throttle: { maxRowsPerSecond: 1000 } }),
      waves: [{ name: 'all', share: 'rest', parallelism: 2 }],
    }),
  );
  const created = await runCli(['schedule', 'create', file, '--every', '10s', '--window', '3s'], cliEnv(t.taskQueue));
  expect(created.code).toBe(0);
  const scheduleId = created.stdout.trim();
  expect(scheduleId).toBe(`stagefill-schedule:fleet:${fleetName}`);
  const conn = connectionFor(client, t.taskQueue);
  try {
    const raw = await client.schedule.getHandle(scheduleId).describe();
    expect(raw.action.workflowType).toBe('fleetWorkflow');
    expect((raw.action.args as [{ runForMs: number }])[0].runForMs).toBe(3000);

    // the first firing ends window_closed, its targets' backfills stopped part way (or not begun) and left for the next
    const firstId = await waitFor(
      'the first firing',
      async () => (await describeSchedule(conn, scheduleId)).recentRuns[0]?.workflowId,
      60_000,
    );
    expect(firstId.startsWith(`stagefill-fleet:${fleetName}:scheduled-`)).toBe(true);
    const first = await result(firstId);
    expect(first.state).toBe('window_closed');
    expect(first.progress.targets.map((x) => [x.name, x.state])).toEqual([
      ['t0', 'pending'],
      ['t1', 'pending'],
    ]);
    for (const x of first.progress.targets) expect(x.cause).toMatch(/window closed/);
    const done = async () => {
      let n = 0;
      for (const x of t.names)
        n += ((await t.db(x).query(`SELECT count(*)::int AS c FROM ${table} WHERE n > 0`)).rows[0] as { c: number }).c;
      return n;
    };
    expect(await done()).toBeLessThan(2 * rows);

    // later firings continue until one completes the fleet
    const results = new Map<string, FleetResult>([[firstId, first]]);
    await waitFor(
      'a firing that completes the fleet',
      async () => {
        for (const r of (await describeSchedule(conn, scheduleId)).recentRuns)
          if (!results.has(r.workflowId)) results.set(r.workflowId, await result(r.workflowId));
        return [...results.values()].some((r) => r.state === 'completed');
      },
      300_000,
      1000,
    );
    // exactly once across the firings: each row of each tenant incremented once, not once per firing
    for (const x of t.names) {
      const { rows: counts } = await t.db(x).query(`SELECT n, count(*)::int AS c FROM ${table} GROUP BY n`);
      expect({ target: x, counts }).toEqual({ target: x, counts: [{ n: 1, c: rows }] });
    }
  } finally {
    expect((await runCli(['schedule', 'delete', scheduleId], cliEnv(t.taskQueue))).code).toBe(0);
  }
}, 600_000);
