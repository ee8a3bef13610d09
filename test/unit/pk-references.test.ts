import type { KeyChange } from '../../core/rollout/alter-column/key-references';
import { leftOutReferences, keyChangesOf, canonicalType } from '../../core/rollout/alter-column/key-references';
import type { ColumnObjects } from '../../core/rollout/alter-column/duplication-types';
import { only } from '../at';

/** A key's type changes only with every column referencing it: the rule `plan`, `start` and the expand step apply. */

type ForeignKey = ColumnObjects['referencedBy'][number];

const fk = (name: string, table: string, columns: string[], refColumns: string[]): ForeignKey => ({
  name,
  table,
  columns,
  refTable: 'public.orders',
  refColumns,
  tail: '',
  definition: '',
  isValid: true,
});

const orders: KeyChange = { id: 'orders-id', table: 'public.orders', column: 'id', newType: 'bigint', up: 'id::bigint', down: 'id::int' };
const items: KeyChange = {
  id: 'items-order-id',
  table: 'public.order_items',
  column: 'order_id',
  newType: 'bigint',
  up: 'order_id::bigint',
  down: 'order_id::int',
};
const itemsFk = fk('order_items_order_id_fkey', 'public.order_items', ['order_id'], ['id']);
/** What leftOutReferences reports when the child's key column does not change with the parent's. */
const itemsLeftOut = [{ column: 'order_id', foreignKey: 'order_items_order_id_fkey' }];

test.each<[string, KeyChange, string, ForeignKey[], KeyChange[], { column: string; foreignKey: string }[]]>([
  ['the child changed the same way', orders, 'integer', [itemsFk], [orders, items], []],
  ['the child changed to the same type spelt int8', orders, 'integer', [itemsFk], [orders, { ...items, newType: 'INT8' }], []],
  ['the child left out', orders, 'integer', [itemsFk], [orders], itemsLeftOut],
  ['the child changed to another type', orders, 'integer', [itemsFk], [orders, { ...items, newType: 'numeric' }], itemsLeftOut],
  ['the child renamed only', orders, 'integer', [itemsFk], [orders, { ...items, newType: undefined, newName: 'order_ref' }], itemsLeftOut],
  [
    'the parent renamed only: keys follow the new name',
    { ...orders, newType: undefined, newName: 'order_id' },
    'integer',
    [itemsFk],
    [],
    [],
  ],
  ['the parent given its own type again (int4 is integer)', { ...orders, newType: 'int4' }, 'integer', [itemsFk], [], []],
  ['no foreign key references it', orders, 'integer', [], [orders], []],
  ['the child of the new type already (widened first)', orders, 'integer', [{ ...itemsFk, columnTypes: ['bigint'] }], [orders], []],
  [
    'the child of the old type, read from the catalog',
    orders,
    'integer',
    [{ ...itemsFk, columnTypes: ['integer'] }],
    [orders],
    itemsLeftOut,
  ],
  [
    'the child of the new type already but changed to another by the rollout',
    orders,
    'integer',
    [{ ...itemsFk, columnTypes: ['bigint'] }],
    [orders, { ...items, newType: 'numeric' }],
    itemsLeftOut,
  ],
  [
    'a composite key: only the column at the parent column position counts',
    orders,
    'integer',
    [fk('lines_fk', 'public.lines', ['tenant_id', 'order_id'], ['tenant_id', 'id'])],
    [orders],
    [{ column: 'order_id', foreignKey: 'lines_fk' }],
  ],
  [
    'two children, one left out',
    orders,
    'integer',
    [itemsFk, fk('refunds_order_fk', 'public.refunds', ['order_ref'], ['id'])],
    [orders, items],
    [{ column: 'order_ref', foreignKey: 'refunds_order_fk' }],
  ],
  [
    'a same-named column on another table does not count for the child',
    orders,
    'integer',
    [itemsFk],
    [orders, { ...items, table: 'public.other_items' }],
    itemsLeftOut,
  ],
])('%s', (_name, parent, type, referencedBy, changes, want) => {
  const left = leftOutReferences(parent, type, referencedBy, changes);
  expect(left.map((l) => ({ column: l.column, foreignKey: l.foreignKey }))).toEqual(want);
});

test('a left-out child names its table.column, the foreign key, and the step to add in the spec words', () => {
  const l = only(leftOutReferences(orders, 'integer', [itemsFk], [orders]));
  expect(l.object).toBe('FOREIGN KEY order_items_order_id_fkey of public.order_items');
  expect(l.message).toContain('public.order_items.order_id is left out');
  expect(l.message).toContain('references public.orders.id, which step "orders-id" changes from integer to bigint');
  expect(l.message).toContain(
    '{ id: order-items-order-id, kind: alterColumn, table: public.order_items, column: order_id, newType: bigint, up: "order_id::bigint", down: "order_id::int", dependsOn: [orders-id] }',
  );
  expect(l.message).toContain('a contract step for public.order_items that the contract of public.orders dependsOn');
});

test("the step to add reads the parent's up and down over the child's column, also when the parent is renamed", () => {
  const parent: KeyChange = {
    ...orders,
    newName: 'order_key',
    newType: 'uuid',
    up: "('00000000-0000-4000-8000-' || lpad(to_hex(id), 12, '0'))::uuid",
    down: "('x' || right(replace(order_key::text, '-', ''), 8))::bit(32)::int",
  };
  const l = only(leftOutReferences(parent, 'integer', [itemsFk], [parent]));
  expect(l.message).toContain(`up: "('00000000-0000-4000-8000-' || lpad(to_hex(order_id), 12, '0'))::uuid"`);
  expect(l.message).toContain(`down: "('x' || right(replace(order_id::text, '-', ''), 8))::bit(32)::int"`);
});

test('a child changed to another type is told the type to give', () => {
  const l = only(leftOutReferences(orders, 'integer', [itemsFk], [orders, { ...items, newType: 'numeric' }]));
  expect(l.message).toContain('public.order_items.order_id is changed to numeric by step "items-order-id"');
  expect(l.message).toContain('Fix: give step "items-order-id" newType: bigint');
});

test('keyChangesOf reads the alterColumn steps of a placed graph only', () => {
  const placed = [
    {
      id: 'orders-id',
      table: 'public.orders',
      step: { kind: 'alterColumn', column: 'id', newType: 'bigint', up: 'id::bigint', down: 'id::int' },
    },
    { id: 'g', table: 'public.orders', step: { kind: 'gate' } },
  ];
  expect(keyChangesOf(placed)).toEqual([{ ...orders, newName: undefined }]);
});

test('canonicalType: spellings of one type agree', () => {
  expect(['int', 'INT4', 'integer', 'int8', 'BIGINT', 'timestamptz', 'character  varying'].map(canonicalType)).toEqual([
    'integer',
    'integer',
    'integer',
    'bigint',
    'bigint',
    'timestamp with time zone',
    'character varying',
  ]);
});
