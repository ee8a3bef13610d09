import type { ApplicationFailure } from '@temporalio/common';
import { rolloutAudit } from '../../db/rollout/audit';
import { pool, unique, makeCounterTable } from './harness';
import { useActivities, acts, begin, expectFailure } from './rollout-activities-harness';

/**
 * The rollout's own bookkeeping, called as plain functions against the real Postgres: one rollout per table, the
 * same workflow resuming, finish releasing the table, and two starts at once.
 */

jest.setTimeout(120_000);

useActivities();

test('one rollout per table: another workflow is refused with TableBusy naming the holder; the same workflow resumes; finish releases', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10);
  const other = await makeCounterTable(pool, unique('t'), 10);
  const steps = [{ kind: 'addCheck' as const, id: 'chk', name: 'n_ok', expression: 'n >= 0' }];
  const a = await begin(table, steps);
  await expectFailure(
    begin(other, steps, { tables: [other, table] }),
    'TableBusy',
    `table ${table} has a rollout running: ${a.spec.name} (${a.workflowId})`,
    'wait for it to finish or roll it back',
  );
  // the refused start took nothing, not even the free table
  expect((await pool.query(`SELECT 1 FROM stagefill.table_locks WHERE table_name = $1`, [other])).rowCount).toBe(0);

  const again = await acts.beginRollout({ workflowId: a.workflowId, name: a.spec.name, spec: a.spec, tables: [table], plan: [] });
  expect(again).toEqual({ rolloutId: a.rolloutId, baselines: {}, resumed: true });

  await acts.applyStep(a.input('chk'));
  await acts.revertStep(a.input('chk'));
  const finished = await acts.finishRollout({
    rolloutId: a.rolloutId,
    workflowId: a.workflowId,
    state: 'rolled_back',
    reason: 'test',
    actor: 'test',
  });
  expect(finished.catalog).toEqual([{ table, equal: true, diff: [] }]);
  expect(await acts.finishRollout({ rolloutId: a.rolloutId, workflowId: a.workflowId, state: 'rolled_back' })).toEqual(finished);

  const b = await begin(other, steps, { tables: [other, table] });
  expect(b.rolloutId).not.toBe(a.rolloutId);

  const audit = await rolloutAudit(pool, a.workflowId);
  expect(audit?.rollout).toMatchObject({ state: 'rolled_back', reason: 'test', tables: [table] });
  expect(audit?.rollout.lineage).toEqual({ chk: { expression: expect.stringMatching(/^[0-9a-f]{16}$/) } });
  expect(audit?.steps.map((s) => [s.step_id, s.effect])).toEqual([['chk', 'reverted']]);
  expect(audit?.events.map((e) => e.event)).toEqual(['started', 'step_applied', 'step_reverted', 'rolled_back']);
});

test('two starts at once on one table: exactly one takes it', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10);
  const steps = [{ kind: 'addCheck' as const, id: 'chk', name: 'n_ok', expression: 'n >= 0' }];
  const results = await Promise.allSettled([begin(table, steps), begin(table, steps), begin(table, steps)]);
  expect(results.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
  for (const x of results) if (x.status === 'rejected') expect((x.reason as ApplicationFailure).type).toBe('TableBusy');
});
