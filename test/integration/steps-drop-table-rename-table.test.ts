import { unique, pool } from './harness';
import {
  runThroughApproval,
  approvalThenContract,
  snapshot,
  exists,
  viewOf,
  useStepsStack,
  startOnFileWorker,
  expectRollbackLeavesAsBefore,
} from './steps-harness';
import { makeOrders, outcome } from './rollout-harness';

/**
 * dropTable and renameTable end to end on the real server and database: forward to contract, and in a second run
 * rolled back at an approval step with the catalog as before.
 */

useStepsStack();

describe('dropTable and renameTable', () => {
  test('dropTable: v2 does not see the table, contract drops it and its view schemas; rolled back, the catalog is as before', async () => {
    const table = await makeOrders(pool, unique('orders'), 20);
    const steps = [{ kind: 'dropTable' }, { kind: 'expose', version: 2 }, ...approvalThenContract];
    const first = await runThroughApproval({ table, steps }, 'forward', async () => {
      expect(await exists(viewOf(table, 1))).toBe(true);
      expect(await exists(viewOf(table, 2))).toBe(false);
      expect(
        (await pool.query(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1`, [`${table.replace('.', '_')}_v2`])).rows[0].n,
      ).toBe(1);
    });
    expect(first.out.state).toBe('completed');
    expect(await exists(table)).toBe(false);
    expect(((await snapshot(table)) as { viewSchemas: unknown[] }).viewSchemas).toEqual([]);

    await expectRollbackLeavesAsBefore(steps, 20);
  });

  test('dropTable is refused at apply while a view of someone else reads the table', async () => {
    const table = await makeOrders(pool, unique('orders'), 5);
    await pool.query(`CREATE VIEW ${table}_report AS SELECT id FROM ${table}`);
    const { handle } = await startOnFileWorker({
      table,
      steps: [{ kind: 'dropTable' }, { kind: 'expose', version: 2 }],
    });
    const out = await outcome(handle);
    expect(out.state).toBe('rolled_back');
    expect(out.failure).toMatch(/cannot be dropped at contract while view public\..*_report depends on it/);
  });

  test('renameTable: v2 sees the new name, contract renames the table; rolled back, the catalog is as before', async () => {
    const table = await makeOrders(pool, unique('orders'), 20);
    const to = unique('purchases');
    const steps = [{ kind: 'renameTable', to }, { kind: 'expose', version: 2 }, ...approvalThenContract];
    const first = await runThroughApproval({ table, steps }, 'forward', async () => {
      expect(await exists(viewOf(table, 2, to))).toBe(true);
      expect(await exists(viewOf(table, 2))).toBe(false);
      expect((await pool.query(`SELECT count(*)::int AS n FROM ${viewOf(table, 2, to)}`)).rows[0].n).toBe(20);
    });
    expect(first.out.state).toBe('completed');
    expect(await exists(table)).toBe(false);
    expect(await exists(`public.${to}`)).toBe(true);
    // the new version's view follows the table
    expect((await pool.query(`SELECT count(*)::int AS n FROM ${viewOf(table, 2, to)}`)).rows[0].n).toBe(20);

    const other = await makeOrders(pool, unique('orders'), 20);
    const before = await snapshot(other);
    const second = await runThroughApproval(
      { table: other, steps: [{ kind: 'renameTable', to: unique('purchases') }, { kind: 'expose', version: 2 }, ...approvalThenContract] },
      'rollback',
    );
    expect(second.out.state).toBe('rolled_back');
    expect(await snapshot(other)).toEqual(before);
  });
});
