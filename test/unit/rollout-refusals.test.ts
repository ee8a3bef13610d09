import type { PlacedRef } from '../../core/rollout/refusals';
import { alterColumnConflicts, dropOfAlteredColumn, missingTableRefusals, missingChildContracts } from '../../core/rollout/refusals';
import { specProblems } from './spec-problems';
import { at, only } from '../at';

const alter = (id: string, column: string, extra: object = {}, table = 'public.orders'): PlacedRef => ({
  id,
  table,
  step: { kind: 'alterColumn', column, up: 'u', down: 'd', ...extra } as { kind: string },
});
const step = (id: string, kind: string, table = 'public.orders'): PlacedRef => ({ id, table, step: { kind } });

describe('two alterColumns of one column', () => {
  test.each([
    [
      'the same column twice',
      [alter('a', 'qty', { newType: 'bigint' }), alter('b', 'qty', { newType: 'numeric' })],
      'column',
      /"b" alters public\.orders\.qty, which step "a" already alters/,
    ],
    [
      "the first one's new name",
      [alter('a', 'code', { newName: 'sku' }), alter('b', 'sku', { newType: 'text' })],
      'column',
      /"b" alters public\.orders\.sku, which step "a" already alters \(code to sku\)/,
    ],
    [
      'two renames to one name',
      [alter('a', 'code', { newName: 'sku' }), alter('b', 'ref', { newName: 'sku' })],
      'newName',
      /"b" renames public\.orders\.ref to sku, a name step "a" already alters or gives/,
    ],
  ])('%s: refused on the later step with the fix', (_, steps, field, message) => {
    const problems = alterColumnConflicts(steps);
    expect(problems).toEqual([{ index: 1, field, message: expect.stringMatching(message) }]);
    expect(at(problems, 0).message).toContain('merge them into one step');
  });

  test('one column per step, or the same column name on two tables: no problem', () => {
    expect(alterColumnConflicts([alter('a', 'qty', { newType: 'bigint' }), alter('b', 'price', { newType: 'numeric' })])).toEqual([]);
    expect(
      alterColumnConflicts([alter('a', 'id', { newType: 'bigint' }), alter('b', 'id', { newType: 'bigint' }, 'public.items')]),
    ).toEqual([]);
  });

  test('the spec refuses it at parse, with the field path (so plan and start exit 2 and the workflow never sees it)', () => {
    const problems = specProblems({
      kind: 'rollout',
      name: 'r',
      table: 'orders',
      steps: [
        { id: 'q1', kind: 'alterColumn', column: 'qty', newType: 'bigint', up: 'qty::bigint', down: 'qty::int' },
        { id: 'q2', kind: 'alterColumn', column: 'qty', newType: 'numeric', up: 'qty::numeric', down: 'qty::int' },
      ],
    });
    expect(problems).toEqual([
      expect.stringMatching(/^steps\.1\.column: step "q2" alters public\.orders\.qty, which step "q1" already alters/),
    ]);
  });
});

describe('a dropColumn of a column an earlier alterColumn changes', () => {
  const drop = (id: string, column: string, table = 'public.orders'): PlacedRef => ({
    id,
    table,
    step: { kind: 'dropColumn', column } as { kind: string },
  });

  test.each([
    ['the altered column, by its name', [alter('a', 'qty', { newType: 'bigint' }), drop('d', 'qty')], 'qty', /alters \(qty to bigint\)/],
    [
      'its new column, by its physical name',
      [alter('a', 'qty', { newType: 'bigint' }), drop('d', 'qty_stagefill_new')],
      'qty_stagefill_new',
      /alters \(qty to bigint\)/,
    ],
    ['the name a rename gives it', [alter('a', 'code', { newName: 'sku' }), drop('d', 'sku')], 'sku', /alters \(code to sku\)/],
    [
      'the column a rename leaves',
      [alter('a', 'code', { newName: 'sku' }), step('g', 'gate'), drop('d', 'code')],
      'code',
      /remove step "d" \(the alterColumn's contract drops it\)/,
    ],
  ])('%s: refused on the dropColumn, naming both steps and the fix', (_, steps, column, detail) => {
    const problems = dropOfAlteredColumn(steps);
    expect(problems).toEqual([{ index: steps.length - 1, field: 'column', message: expect.stringMatching(detail) }]);
    const message = problems[0]?.message;
    expect(message).toContain(`step "d" drops public.orders.${column}, which step "a" alters`);
    expect(message).toContain('Fix: to drop the column, remove step "a"');
    expect(message).toContain("or drop the altered column in a rollout of its own after this one's contract");
  });

  test('fine after a contract of the table, on another table, for another column, or a drop before the alter', () => {
    expect(dropOfAlteredColumn([alter('a', 'qty', { newType: 'bigint' }), step('c', 'contract'), drop('d', 'qty')])).toEqual([]);
    expect(dropOfAlteredColumn([alter('a', 'qty', { newType: 'bigint' }), drop('d', 'qty', 'public.items')])).toEqual([]);
    expect(dropOfAlteredColumn([alter('a', 'qty', { newType: 'bigint' }), drop('d', 'note')])).toEqual([]);
    // a contract of another table does not end the alterColumn's
    expect(
      dropOfAlteredColumn([alter('a', 'qty', { newType: 'bigint' }), step('c', 'contract', 'public.items'), drop('d', 'qty')]),
    ).toHaveLength(1);
  });

  test('the spec refuses it at parse, with the field path', () => {
    const problems = specProblems({
      kind: 'rollout',
      name: 'r',
      table: 'orders',
      steps: [
        { id: 'q1', kind: 'alterColumn', column: 'qty', newType: 'bigint', up: 'qty::bigint', down: 'qty::int' },
        { id: 'gone', kind: 'dropColumn', column: 'qty' },
      ],
    });
    expect(problems).toEqual([expect.stringMatching(/^steps\.1\.column: step "gone" drops public\.orders\.qty, which step "q1" alters/)]);
  });
});

describe('tables that do not exist', () => {
  test('named once with its steps; the fix says which table field', () => {
    const exists = (t: string) => t === 'public.items';
    expect(
      missingTableRefusals(
        [
          step('1-addColumn', 'addColumn'),
          step('2-gate', 'gate'),
          step('3-contract', 'contract'),
          step('x', 'createIndex', 'public.lines'),
        ],
        'public.orders',
        exists,
      ),
    ).toEqual([
      `table public.orders does not exist (steps "1-addColumn", "3-contract" work on it): create it first, or fix the spec's table`,
      `table public.lines does not exist (step "x" works on it): create it first, or fix the step's table`,
    ]);
  });

  test('a table the rollout creates (createTable, or a sql step that may) is not asked for', () => {
    const none = () => false;
    expect(missingTableRefusals([step('t', 'createTable'), step('i', 'createIndex')], 'public.orders', none)).toEqual([]);
    expect(missingTableRefusals([step('s', 'sql'), step('e', 'expose')], 'public.orders', none)).toEqual([]);
    expect(missingTableRefusals([step('g', 'gate'), step('a', 'approval')], 'public.orders', none)).toEqual([]);
  });
});

describe('a child key changed without a contract of its own', () => {
  const fk = { name: 'items_order_fk', table: 'public.items', columns: ['order_id'], refColumns: ['id'] };
  const parent = { id: 'orders-id', table: 'public.orders', column: 'id' };

  test('refused, naming the child step, its key and the contract to add', () => {
    const steps = [
      alter('orders-id', 'id', { newType: 'bigint' }),
      alter('items-order-id', 'order_id', { newType: 'bigint' }, 'public.items'),
      step('contract-orders', 'contract'),
    ];
    const r = only(missingChildContracts(steps, parent, [fk]));
    expect(r.object).toBe('FOREIGN KEY items_order_fk of public.items');
    expect(r.message).toContain('step "items-order-id" changes public.items.order_id');
    expect(r.message).toContain('the rollout has no contract step for public.items');
    expect(r.message).toContain(
      'add { id: contract-items, kind: contract, table: public.items } and make step "contract-orders" dependsOn it',
    );
  });

  test('fine with the child contracted, the parent not contracted, or the child column not changed', () => {
    const base = [
      alter('orders-id', 'id', { newType: 'bigint' }),
      alter('items-order-id', 'order_id', { newType: 'bigint' }, 'public.items'),
    ];
    expect(missingChildContracts([...base, step('c-items', 'contract', 'public.items'), step('c', 'contract')], parent, [fk])).toEqual([]);
    expect(missingChildContracts(base, parent, [fk])).toEqual([]);
    expect(missingChildContracts([at(base, 0), step('c', 'contract')], parent, [fk])).toEqual([]);
  });
});
