import { unique, pool, useStack } from './harness';
import { runThroughApproval, approvalThenContract, exists, columnNames } from './rollout-harness';

/**
 * createTable, dropColumn with down and renameTable on mixed-case names, end to end: every identifier quoted.
 */

jest.setTimeout(240_000);

useStack({ worker: true });

test('mixed-case names: createTable, dropColumn with down and renameTable quote every identifier, forward to contract', async () => {
  const base = unique('Orders');
  await pool.query(`CREATE TABLE public."${base}" (id bigint PRIMARY KEY, "Status" text NOT NULL, "Qty" int)`);
  await pool.query(`INSERT INTO public."${base}" SELECT g, 'new', g FROM generate_series(1, 10) g`);
  const table = `public.${base}`;
  const created = `public.${unique('Refunds')}`;
  const to = unique('Purchases');
  const v2 = `"public_${base}_v2"."${to}"`;
  const { out } = await runThroughApproval(
    {
      table,
      steps: [
        {
          kind: 'createTable',
          table: created,
          columns: [
            { name: 'Id', type: 'bigint', notNull: true },
            { name: 'Order_Ref', type: 'bigint' },
          ],
          primaryKey: ['Id'],
          indexes: [{ name: `${created.split('.')[1]}_Ref`, columns: ['Order_Ref'] }],
        },
        { kind: 'dropColumn', column: 'Status', down: `'from v2 ' || "Qty"` },
        { kind: 'renameTable', to },
        { kind: 'expose', version: 2 },
        ...approvalThenContract,
      ],
    },
    'forward',
    async () => {
      expect(await columnNames(v2)).toEqual(['id', 'Qty']);
      await pool.query(`INSERT INTO ${v2} (id, "Qty") VALUES (100, 7)`);
      expect((await pool.query(`SELECT "Status" FROM public."${base}" WHERE id = 100`)).rows[0].Status).toBe('from v2 7');
    },
  );
  expect(out.state).toBe('completed');
  expect(await exists(`public."${base}"`)).toBe(false);
  expect(await columnNames(`public."${to}"`)).toEqual(['id', 'Qty']);
  expect(await columnNames(`public."${created.split('.')[1]}"`)).toEqual(['Id', 'Order_Ref']);
});
