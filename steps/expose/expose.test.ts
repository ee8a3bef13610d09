import { expose } from './plan';
import { exposeStep } from './schema';
import { viewShapes } from '../../core/rollout/views';
import { viewSchemaName } from '../../core/rollout/object-names';
import { stepShape } from '..';

describe('expose', () => {
  test('plan: the version schema and the flag; canary percent named; instant, online', () => {
    const p = expose.describe(exposeStep.parse({ kind: 'expose', version: 2, percent: 10 }), {
      id: 'e',
      table: 'public.orders',
      rollbackWindowMs: 0,
    });
    expect(p.forward).toBe('create view schema public_orders_v2 and set the read-path flag of public.orders to v2 for 10% of readers');
    expect(p.rollback).toBe('drop the v2 views and set the flag back to the previous version');
    expect(p.online).toBe(true);
    expect(expose.startsRollbackWindow).toBe(true);
  });

  test('view schema names are cut to 63 characters', () => expect(viewSchemaName(`public.${'x'.repeat(70)}`, 2).length).toBe(63));

  // the table holds: id, amount (altered to amount_stagefill_new), note (dropped at contract), cents (added)
  const steps = [
    { kind: 'alterColumn', column: 'amount', newType: 'bigint', up: 'u', down: 'd' },
    { kind: 'addColumn', column: 'cents', type: 'int', up: '1' },
    { kind: 'expose', version: 2, percent: 100 },
    { kind: 'contract', drops: ['note'] },
  ];
  test.each([
    [
      'all steps applied',
      ['id', 'amount', 'note', 'amount_stagefill_new', 'cents'],
      [
        ['id', 'id'],
        ['amount_stagefill_new', 'amount'],
        ['cents', 'cents'],
      ],
      ['id', 'amount', 'note'],
    ],
    [
      'the altered column not there (yet): no replacement',
      ['id', 'amount', 'note', 'cents'],
      [
        ['id', 'id'],
        ['amount', 'amount'],
        ['cents', 'cents'],
      ],
      ['id', 'amount', 'note'],
    ],
  ])('shapes: %s', (_, columns, newShape, legacy) => {
    const s = viewShapes(columns, steps.map(stepShape));
    expect(s.newShape.map((c) => [c.source, c.as])).toEqual(newShape);
    expect(s.legacyShape.map((c) => c.source)).toEqual(legacy);
  });
});
