import { viewShapes, versionViewName } from '../../core/rollout/views';
import { isViewSchemaOf, viewSchemaName } from '../../core/rollout/object-names';
import type { ShapeChange } from '../../core/rollout/views';

// the view-shape rules of expose, pure: which columns (and which name) each version sees
describe('view shapes', () => {
  const cols = ['id', 'amount', 'note', 'status', 'amount_new', 'cents'];
  test.each<[string, ShapeChange[], [string, string][], string[]]>([
    ['no change: both versions see every column', [], cols.map((c) => [c, c]), cols],
    ['an added column: only the new version sees it', [{ added: ['cents'] }], cols.map((c) => [c, c]), cols.filter((c) => c !== 'cents')],
    [
      'a dropped column (dropColumn, contract drops): hidden from the new version only',
      [{ dropped: ['note'] }, { dropped: ['status'] }],
      [
        ['id', 'id'],
        ['amount', 'amount'],
        ['amount_new', 'amount_new'],
        ['cents', 'cents'],
      ],
      cols,
    ],
    [
      'a replaced column shown under the old name in its place; the legacy version sees neither the new column nor the added one',
      [{ replaced: [{ column: 'amount', by: 'amount_new', as: 'amount' }] }, { added: ['cents'] }, { dropped: ['note'] }],
      [
        ['id', 'id'],
        ['amount_new', 'amount'],
        ['status', 'status'],
        ['cents', 'cents'],
      ],
      ['id', 'amount', 'note', 'status'],
    ],
    [
      'a replacement whose column does not exist yet changes nothing',
      [{ replaced: [{ column: 'amount', by: 'nope', as: 'amount' }] }],
      cols.map((c) => [c, c]),
      cols,
    ],
  ])('%s', (_, changes, newShape, legacy) => {
    const s = viewShapes(cols, changes);
    expect(s.newShape.map((c) => [c.source, c.as])).toEqual(newShape);
    expect(s.legacyShape.map((c) => c.source)).toEqual(legacy);
  });

  test.each<[string, ShapeChange[], string | null]>([
    ['no table change: the table name', [{ dropped: ['a'] }], 'orders'],
    ['renameTable: the new name', [{ added: ['x'] }, { tableRenamedTo: 'purchases' }], 'purchases'],
    ['dropTable: no view', [{ isTableHidden: true }], null],
    ['dropTable wins over a rename', [{ tableRenamedTo: 'purchases' }, { isTableHidden: true }], null],
  ])('version view name: %s', (_, changes, name) => expect(versionViewName('orders', changes)).toBe(name));

  test.each([
    ['public_orders_v2', true],
    ['public_orders_v10', true],
    ['public_orders_v', false],
    ['public_orders_vx', false],
    ['public_orders_items_v2', false],
    ['other_orders_v2', false],
  ])('isViewSchemaOf(public.orders, %s) is %s', (schema, is) => expect(isViewSchemaOf('public.orders', schema)).toBe(is));

  test('a name cut at 63 characters matches only itself', () => {
    const long = `public.${'x'.repeat(70)}`;
    expect(isViewSchemaOf(long, viewSchemaName(long, 3))).toBe(true);
    expect(isViewSchemaOf(long, `${viewSchemaName(long, 3)}1`)).toBe(false);
  });
});
