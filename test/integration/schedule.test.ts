import { describeSchedule } from '../../client/schedules';
import type { BackfillResult } from '../../workflows/backfill/workflow';
import { pool, conn, dir, useStack, unique, makeCounterTable, waitFor } from './harness';
import { cli, writeSpec, counterBackfill } from './cli-harness';

jest.setTimeout(180_000);

useStack({ worker: true, connection: true, dir: 'stagefill-schedule', queue: 'schedq' });
const result = (workflowId: string) => conn.client.workflow.getHandle(workflowId).result() as Promise<BackfillResult>;

test('each firing works until its window closes; the next continues from the checkpoints until the backfill is done', async () => {
  const rows = 9_000;
  const table = await makeCounterTable(pool, unique('t'), rows);
  // ~1,000 rows/s against a 3s window: the backfill needs several firings
  const spec = counterBackfill(table, { chunkSize: 200, throttle: { maxRowsPerSecond: 1000 } });
  const file = writeSpec(dir, spec);

  const created = await cli('schedule', 'create', file, '--every', '8s', '--window', '3s');
  expect(created.code).toBe(0);
  const scheduleId = created.stdout.trim();
  expect(scheduleId).toBe(`stagefill-schedule:${table}:${spec.name}`);

  const raw = await conn.client.schedule.getHandle(scheduleId).describe();
  expect(raw.policies.overlap).toBe('SKIP'); // never two firings at once on one table
  expect(raw.action.workflowType).toBe('backfillWorkflow');
  expect((raw.action.args as [{ runForMs: number }])[0].runForMs).toBe(3000);

  const listed = JSON.parse((await cli('schedule', 'list', '--json')).stdout) as {
    scheduleId: string;
    everyMs: number;
    windowMs: number;
    isPaused: boolean;
  }[];
  expect(listed.find((s) => s.scheduleId === scheduleId)).toMatchObject({ everyMs: 8000, windowMs: 3000, isPaused: false });

  const second = await cli('schedule', 'create', file, '--every', '8s', '--window', '3s');
  expect(second.code).toBe(1);
  expect(second.stderr).toContain(`schedule ${scheduleId} already exists`);

  try {
    // the first firing stops at its window's end with part of the work done
    const firstId = await waitFor(
      'the first firing',
      async () => (await describeSchedule(conn, scheduleId)).recentRuns[0]?.workflowId,
      30_000,
    );
    expect(firstId.startsWith(`stagefill-backfill:${table}:${spec.name}:scheduled-`)).toBe(true);
    const first = await result(firstId);
    expect(first.state).toBe('window_closed');
    expect(first.continued).toBe(false);
    expect(first.rowsProcessed).toBeGreaterThan(0);
    expect(first.rowsProcessed).toBeLessThan(rows);
    const afterFirst = await countN(table);
    expect(afterFirst['1']).toBe(first.rowsProcessed);

    // pause and unpause go through the schedule; the firings' work is untouched
    expect((await cli('schedule', 'pause', scheduleId)).code).toBe(0);
    expect((await describeSchedule(conn, scheduleId)).isPaused).toBe(true);
    expect((await cli('schedule', 'unpause', scheduleId)).code).toBe(0);
    expect((await describeSchedule(conn, scheduleId)).isPaused).toBe(false);

    // later firings continue from the checkpoints until one completes the backfill
    const results = new Map<string, BackfillResult>([[firstId, first]]);
    await waitFor(
      'a firing that completes the backfill',
      async () => {
        for (const r of (await describeSchedule(conn, scheduleId)).recentRuns) {
          if (!results.has(r.workflowId)) results.set(r.workflowId, await result(r.workflowId));
        }
        return [...results.values()].some((r) => r.state === 'completed');
      },
      120_000,
      1000,
    );
    const later = [...results.entries()].filter(([id]) => id !== firstId).map(([, r]) => r);
    expect(later.length).toBeGreaterThanOrEqual(1);
    for (const r of later) {
      expect(r.continued).toBe(true); // from the checkpoints, not from the start
      expect(r.generation).toBe(1);
    }
    expect(later.map((r) => r.rowsProcessed).sort((a, b) => a - b)[0]).toBeGreaterThan(first.rowsProcessed);
    expect(later.find((r) => r.state === 'completed')!.rowsProcessed).toBe(rows);
    // exactly once: every row incremented once over all the firings
    expect(await countN(table)).toEqual({ '1': rows });
  } finally {
    const del = await cli('schedule', 'delete', scheduleId);
    expect(del.code).toBe(0);
  }
  const gone = JSON.parse((await cli('schedule', 'list', '--json')).stdout) as { scheduleId: string }[];
  expect(gone.map((s) => s.scheduleId)).not.toContain(scheduleId);
  const again = await cli('schedule', 'delete', scheduleId);
  expect(again.code).toBe(1);
  expect(again.stderr).toContain(`no schedule ${scheduleId}`);
});

test('schedule create rejects bad flags and non-backfill specs with exit 2, naming the flag or field', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10);
  const file = writeSpec(dir, counterBackfill(table));
  const cases: [string[], string][] = [
    [['--every', '10s', '--window', '4x'], '--window: "4x" is not a duration'],
    [['--cron', '0 1 * *', '--window', '4h'], '--cron: "0 1 * *" is not a five-field cron expression'],
    [['--cron', '0 1 * * *', '--every', '1h'], '--cron or --every: give exactly one'],
    [['--window', '4h'], '--cron or --every: give exactly one'],
    [['--cron', '0 1 * * *', '--time-zone', 'Mars/Olympus'], '--time-zone: "Mars/Olympus" is not an IANA time zone'],
  ];
  for (const [flags, message] of cases) {
    const r = await cli('schedule', 'create', file, ...flags);
    expect({ flags, code: r.code }).toEqual({ flags, code: 2 });
    expect(r.stderr).toContain(message);
  }
  const rollout = writeSpec(dir, { kind: 'rollout', name: unique('ro'), table, steps: [{ kind: 'setNotNull', column: 'v' }] });
  const r = await cli('schedule', 'create', rollout, '--cron', '0 1 * * *');
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('kind: schedules run backfills');
  const unknown = await cli('schedule', 'pause', 'stagefill-schedule:public.nope:nothing');
  expect(unknown.code).toBe(1);
});

async function countN(table: string): Promise<Record<string, number>> {
  const { rows } = await pool.query(`SELECT n, count(*)::int AS c FROM ${table} GROUP BY n`);
  return Object.fromEntries(rows.map((r) => [String(r.n), r.c]));
}
