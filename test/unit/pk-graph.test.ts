import { parseSpec } from '../../steps/spec';

/** A contract may wait for another contract (a parent's for its children's); nothing else may depend on one. */

const steps = (extra: unknown[]) => ({
  kind: 'rollout',
  name: 'pk',
  table: 'public.orders',
  steps: [
    { id: 'orders-id', kind: 'alterColumn', column: 'id', newType: 'bigint', up: 'id::bigint', down: 'id::int' },
    {
      id: 'items-order-id',
      kind: 'alterColumn',
      table: 'public.order_items',
      column: 'order_id',
      newType: 'bigint',
      up: 'order_id::bigint',
      down: 'order_id::int',
      dependsOn: ['orders-id'],
    },
    ...extra,
  ],
});

test("a parent's contract depending on its child's parses", () => {
  expect(() =>
    parseSpec(
      steps([
        { id: 'contract-items', kind: 'contract', table: 'public.order_items', dependsOn: ['items-order-id'] },
        { id: 'contract-orders', kind: 'contract', dependsOn: ['contract-items'] },
      ]),
    ),
  ).not.toThrow();
});

test('a step other than a contract depending on a contract is refused, naming it', () => {
  expect(() =>
    parseSpec(
      steps([
        { id: 'contract-items', kind: 'contract', table: 'public.order_items', dependsOn: ['items-order-id'] },
        { id: 'after', kind: 'gate', checks: [{ name: 'x', sql: 'SELECT 0', expect: { eq: 0 } }], dependsOn: ['contract-items'] },
      ]),
    ),
  ).toThrow(/contract step "contract-items" is irreversible, so nothing but another contract step may depend on it; after do/);
});
