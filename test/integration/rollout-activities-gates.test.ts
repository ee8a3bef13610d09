import type { RolloutStep } from '../../steps/spec';
import { pool, unique, makeCounterTable } from './harness';
import { useActivities, acts, begin, expectCatalogUnchanged } from './rollout-activities-harness';

/**
 * Gates and the steps that only wait (backfill, gate, soak, approval), called as plain functions against the real
 * Postgres: their revert is only recorded, and runChecks records every result against the baselines taken at begin.
 */

jest.setTimeout(120_000);

useActivities();

test('backfill, gate, soak and approval steps only record their revert', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10);
  const r = await begin(table, [
    { kind: 'backfill', id: 'bf', transform: `UPDATE ${table} SET n = n + 1 WHERE id >= :lo AND id < :hi` },
    { kind: 'gate', id: 'gate', checks: [{ name: 'rows', sql: `SELECT count(*) FROM ${table}`, expect: { eq: 10 } }] },
    { kind: 'approval', id: 'ok' },
  ]);
  for (const id of ['bf', 'gate', 'ok']) {
    expect(await acts.revertStep(r.input(id))).toEqual({ alreadyReverted: false });
    expect(await acts.revertStep(r.input(id))).toEqual({ alreadyReverted: true });
  }
  const { rows } = await pool.query(`SELECT step_id, state, effect FROM stagefill.rollout_steps WHERE rollout_id = $1 ORDER BY step_id`, [
    r.rolloutId,
  ]);
  expect(rows).toEqual([
    { step_id: 'bf', state: 'reverted', effect: 'reverted' },
    { step_id: 'gate', state: 'reverted', effect: 'reverted' },
    { step_id: 'ok', state: 'reverted', effect: 'reverted' },
  ]);
  await expectCatalogUnchanged(r);
});

test('runChecks: bounds, unchanged-since-start baselines and broken queries, every result recorded', async () => {
  const table = await makeCounterTable(pool, unique('t'), 100);
  const r = await begin(table, [
    {
      kind: 'gate',
      id: 'gate',
      checks: [
        { name: 'rows', sql: `SELECT count(*) FROM ${table}`, unchanged: true },
        { name: 'rows within 5', sql: `SELECT count(*) FROM ${table}`, unchanged: true, tolerance: 5 },
        { name: 'no negatives', sql: `SELECT count(*) FROM ${table} WHERE n < 0`, expect: { eq: 0 } },
        { name: 'broken', sql: 'SELECT no_such_column FROM pg_class', expect: { eq: 0 } },
        { name: 'no writes', sql: `WITH d AS (DELETE FROM ${table} RETURNING 1) SELECT count(*) FROM d`, expect: { eq: 0 } },
      ],
    },
  ]);
  expect(r.baselines).toEqual({ 'gate/rows': '100', 'gate/rows within 5': '100' });
  await pool.query(`INSERT INTO ${table} (id, n) SELECT g, -1 FROM generate_series(1001, 1002) g`);

  const results = await acts.runChecks({
    rolloutId: r.rolloutId,
    workflowId: r.workflowId,
    stepId: 'gate',
    table,
    checks: (r.spec.steps[0] as Extract<RolloutStep, { kind: 'gate' }>).checks,
    baselines: r.baselines,
    attempt: 1,
  });
  const byName = Object.fromEntries(results.map((x) => [x.name, x]));
  expect(byName['rows']).toMatchObject({ ok: false, value: '102', expected: 'unchanged from 100', deviation: 2 });
  expect(byName['rows within 5']).toMatchObject({ ok: true, value: '102', deviation: 0 });
  expect(byName['no negatives']).toMatchObject({ ok: false, value: '2', expected: '= 0', deviation: 2 });
  expect(byName['broken']).toMatchObject({ ok: false, value: null });
  expect(byName['broken']!.error).toContain('no_such_column');
  expect(byName['no writes']!.ok).toBe(false);
  expect(byName['no writes']!.error).toMatch(/read-only/);
  expect((await pool.query(`SELECT count(*)::int AS c FROM ${table}`)).rows[0].c).toBe(102);

  const recorded = await pool.query(
    `SELECT check_name, ok, value FROM stagefill.gate_results WHERE rollout_id = $1 AND step_id = 'gate' AND attempt = 1 ORDER BY check_name`,
    [r.rolloutId],
  );
  expect(recorded.rows.map((x) => [x.check_name, x.ok])).toEqual([
    ['broken', false],
    ['no negatives', false],
    ['no writes', false],
    ['rows', false],
    ['rows within 5', true],
  ]);
});
