import { unique, pool, useStack } from './harness';
import { runThroughApproval, approvalThenContract, snapshot, exists, makeOrders } from './rollout-harness';

/**
 * The sql step's transaction: false, check and onContract end to end on the real server and database: forward to
 * contract, and in a second run rolled back at an approval step with the catalog as before.
 */

jest.setTimeout(240_000);

useStack({ worker: true });

describe('sql: transaction: false and onContract', () => {
  const steps = (table: string, index: string) => [
    {
      kind: 'sql',
      apply: `CREATE INDEX CONCURRENTLY "${index}" ON ${table} (qty)`,
      revert: `DROP INDEX CONCURRENTLY IF EXISTS public."${index}"`,
      transaction: false,
      check: `SELECT to_regclass('public."${index}"') IS NOT NULL`,
      onContract: `COMMENT ON TABLE ${table} IS 'orders, v2'`,
    },
    ...approvalThenContract,
  ];

  test('CREATE INDEX CONCURRENTLY runs outside a transaction, onContract at contract; rolled back, the catalog is as before', async () => {
    const table = await makeOrders(pool, unique('orders'), 1000);
    const index = unique('qty_idx');
    const first = await runThroughApproval({ table, steps: steps(table, index) }, 'forward', async () => {
      expect(await exists(`public."${index}"`)).toBe(true);
      // onContract has not run yet
      expect((await pool.query(`SELECT obj_description($1::regclass, 'pg_class') AS c`, [table])).rows[0].c).toBeNull();
    });
    expect(first.out.state).toBe('completed');
    const valid = await pool.query(`SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, [`public."${index}"`]);
    expect(valid.rows[0].indisvalid).toBe(true);
    expect((await pool.query(`SELECT obj_description($1::regclass, 'pg_class') AS c`, [table])).rows[0].c).toBe('orders, v2');

    const other = await makeOrders(pool, unique('orders'), 1000);
    const before = await snapshot(other);
    const second = await runThroughApproval({ table: other, steps: steps(other, unique('qty_idx')) }, 'rollback');
    expect(second.out.state).toBe('rolled_back');
    expect(await snapshot(other)).toEqual(before);
  });

  test('when check says it already ran, apply is skipped and the revert leaves what was there', async () => {
    const table = await makeOrders(pool, unique('orders'), 100);
    const index = unique('qty_idx');
    await pool.query(`CREATE INDEX "${index}" ON ${table} (qty)`);
    const before = await snapshot(table);
    const { handle, out } = await runThroughApproval({ table, steps: steps(table, index) }, 'rollback');
    expect(out.state).toBe('rolled_back');
    expect(await snapshot(table)).toEqual(before); // the index someone else made is still there
    const detail = await pool.query(
      `SELECT s.detail FROM stagefill.rollout_steps s JOIN stagefill.rollouts r ON r.id = s.rollout_id WHERE r.workflow_id = $1 AND s.kind = 'sql'`,
      [handle.workflowId],
    );
    expect(detail.rows[0].detail).toMatchObject({ wasDoneBefore: true, ran: false });
  });
});
