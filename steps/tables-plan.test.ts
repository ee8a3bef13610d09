import { parseRolloutSpec } from './spec';
import { planRollout, formatRolloutPlan } from './describe';

// `stagefill plan` lists the table kinds with their lock and their revert
describe('plan of the table and column kinds', () => {
  const spec = parseRolloutSpec({
    kind: 'rollout',
    name: 'split-orders',
    table: 'public.orders',
    steps: [
      {
        kind: 'createTable',
        table: 'public.order_notes',
        columns: [
          { name: 'order_id', type: 'bigint', notNull: true, references: { table: 'public.orders', column: 'id' } },
          { name: 'note', type: 'text' },
        ],
        primaryKey: ['order_id'],
      },
      { kind: 'dropColumn', column: 'note', down: "''" },
      { kind: 'dropTable', table: 'public.orders_archive' },
      { kind: 'renameTable', table: 'public.order_items', to: 'line_items' },
      {
        kind: 'sql',
        apply: 'CREATE INDEX CONCURRENTLY orders_qty_idx ON public.orders (qty)',
        revert: 'DROP INDEX CONCURRENTLY IF EXISTS public.orders_qty_idx',
        transaction: false,
        check: "SELECT to_regclass('public.orders_qty_idx') IS NOT NULL",
        onContract: 'ANALYZE public.orders',
      },
      { kind: 'expose', version: 2 },
      { kind: 'contract' },
    ],
  });
  const plan = planRollout(spec);
  const by = Object.fromEntries(plan.steps.map((s) => [s.kind, s]));

  test.each([
    [
      'createTable',
      /^none on existing tables but SHARE ROW EXCLUSIVE on public\.orders/,
      /^drop public\.order_notes if it is still what stagefill created and holds no rows/,
    ],
    ['dropColumn', /^SHARE ROW EXCLUSIVE \(trigger creation, instant\); ACCESS EXCLUSIVE at contract/, /^drop the trigger/],
    ['dropTable', /^none until contract: ACCESS EXCLUSIVE \(drop table, instant\)$/, /^nothing to undo/],
    ['renameTable', /^none until contract: ACCESS EXCLUSIVE \(catalog only, instant\)$/, /^nothing to undo/],
    [
      'sql',
      /each statement on its own \(under lock_timeout\)$/,
      /^run outside a transaction, if check says apply ran: DROP INDEX CONCURRENTLY/,
    ],
  ])('%s: its lock and its revert', (kind, lock, rollback) => {
    const step = by[kind];
    expect(step).toBeDefined();
    expect(step?.lock).toMatch(lock);
    expect(step?.rollback).toMatch(rollback);
    expect(step?.isReversible).toBe(true);
  });

  test('each kind works on its own table; the text plan names lock and rollback for each', () => {
    expect(plan.tables.sort()).toEqual(['public.order_items', 'public.order_notes', 'public.orders', 'public.orders_archive']);
    const text = formatRolloutPlan(plan);
    for (const kind of ['createTable', 'dropColumn', 'dropTable', 'renameTable', 'sql'])
      expect(text).toMatch(new RegExp(`\\[${kind} on public\\.\\w+\\][^\\n]*\\n    do: .*\\n    lock: .*\\n    rollback: `));
    expect(by.sql?.forward).toBe(
      'run outside a transaction, unless check says it ran: CREATE INDEX CONCURRENTLY orders_qty_idx ON public.orders (qty); at contract run: ANALYZE public.orders',
    );
  });
});
