import { unique, waitFor, pool } from './harness';
import { runThroughApproval, approvalThenContract, snapshot, exists, useStepsStack, startOnFileWorker } from './steps-harness';
import { waitForApproval, rollBack, makeOrders, progressOf, outcome } from './rollout-harness';
import { retrySignal } from '../../workflows/definitions';

/**
 * createTable end to end on the real server and database: forward to contract, a second run rolled back at an
 * approval step with the catalog as before, and the revert that holds while the table is not what stagefill made.
 */

useStepsStack();

describe('createTable', () => {
  const createSteps = (table: string, orders: string) => [
    {
      kind: 'createTable',
      table,
      columns: [
        { name: 'id', type: 'bigint', notNull: true },
        { name: 'order_id', type: 'bigint', notNull: true, references: { table: orders, column: 'id', onDelete: 'CASCADE' } },
        { name: 'amount', type: 'numeric(12,2)', notNull: true, default: '0' },
        { name: 'reason', type: 'text' },
      ],
      primaryKey: ['id'],
      unique: [{ columns: ['order_id', 'reason'] }],
      checks: [{ name: `${table.split('.')[1]}_amount_ok`, expression: 'amount >= 0' }],
      indexes: [{ columns: ['reason'] }],
    },
  ];

  test('forward to contract, then a second run rolled back at approval: the catalog as before', async () => {
    const orders = await makeOrders(pool, unique('orders'), 10);
    const ordersBefore = await snapshot(orders);
    const table = `public.${unique('refunds')}`;
    const first = await runThroughApproval({ table, steps: [...createSteps(table, orders), ...approvalThenContract] }, 'forward');
    expect(first.out.state).toBe('completed');
    const cat = (await snapshot(table)) as { columns: { attname: string }[]; constraints: { def: string }[]; indexes: { def: string }[] };
    expect(cat.columns.map((c) => c.attname).sort()).toEqual(['amount', 'id', 'order_id', 'reason']);
    expect(cat.constraints.map((c) => c.def)).toEqual(
      expect.arrayContaining([
        'PRIMARY KEY (id)',
        'CHECK ((amount >= (0)::numeric))',
        'UNIQUE (order_id, reason)',
        expect.stringMatching(/^FOREIGN KEY \(order_id\) REFERENCES .* ON DELETE CASCADE$/),
      ]),
    );
    expect(cat.indexes.some((x) => /USING btree \(reason\)/.test(x.def))).toBe(true);
    await pool.query(`INSERT INTO ${orders} SELECT 999, 1, 1, 1, 'new', now()`);
    await pool.query(`INSERT INTO ${table} (id, order_id, reason) VALUES (1, 999, 'late')`);

    const again = `public.${unique('refunds')}`;
    const before = await snapshot(again);
    const second = await runThroughApproval(
      { table: again, steps: [...createSteps(again, orders), ...approvalThenContract] },
      'rollback',
      async () => expect(await exists(again)).toBe(true),
    );
    expect(second.out.state).toBe('rolled_back');
    expect(await exists(again)).toBe(false);
    expect(await snapshot(again)).toEqual(before);
    expect(second.out.result?.catalog?.every((c) => c.equal)).toBe(true);
    // the table it referenced lost nothing either (its catalog before the first run's late row)
    expect(await snapshot(orders)).toEqual(ordersBefore);
  });

  test('the revert holds while the table has rows or a shape stagefill did not make, says why, and drops it on retry once they are gone', async () => {
    const orders = await makeOrders(pool, unique('orders'), 10);
    const table = `public.${unique('refunds')}`;
    const { handle } = await startOnFileWorker({
      table,
      steps: [...createSteps(table, orders), ...approvalThenContract],
    });
    await waitForApproval(handle);
    // someone else writes a row, then the rollout is rolled back
    await pool.query(`INSERT INTO ${table} (id, order_id, reason) VALUES (1, 1, 'someone else')`);
    await rollBack(handle);
    const held = await waitFor('held on rows', async () => {
      const p = await progressOf(handle);
      return p.state === 'held' && p;
    });
    const step = held.steps.find((s) => s.kind === 'createTable')!;
    expect(step.state).toBe('held');
    expect(held.lastError).toMatch(
      new RegExp(`${table} holds 1 row written after stagefill created it; not dropping data it did not write`),
    );
    expect(await exists(table)).toBe(true);

    // the row goes, but a column comes: still not what stagefill created
    await pool.query(`DELETE FROM ${table}`);
    await pool.query(`ALTER TABLE ${table} ADD COLUMN extra int`);
    await handle.signal(retrySignal, { by: 'test' });
    await waitFor('held on the changed shape', async () =>
      /changed since stagefill created it \(.*column extra added/.test((await progressOf(handle)).lastError ?? ''),
    );
    expect((await progressOf(handle)).state).toBe('held');
    expect(await exists(table)).toBe(true);

    // back to what stagefill made: retry drops it
    await pool.query(`ALTER TABLE ${table} DROP COLUMN extra`);
    await handle.signal(retrySignal, { by: 'test' });
    const out = await outcome(handle);
    expect(out.state).toBe('rolled_back');
    expect(await exists(table)).toBe(false);
    const events = await pool.query(
      `SELECT count(*)::int AS n FROM stagefill.events WHERE workflow_id = $1 AND event = 'step_revert_held'`,
      [handle.workflowId],
    );
    expect(events.rows[0].n).toBe(2);
  });
});
