import { dropConstraint } from './plan';

describe('dropConstraint', () => {
  test('plan: deferred to contract (still enforced until then), so the rollback needs nothing', () => {
    const p = dropConstraint.describe(
      { kind: 'dropConstraint', name: 'qty_pos' },
      { id: 'd', table: 'public.orders', rollbackWindowMs: 0 },
    );
    expect(p.forward).toMatch(/stays, still enforced, until contract.*at contract DROP CONSTRAINT qty_pos/);
    expect(p.rollback).toMatch(/^nothing/);
    expect(p.lock).toBe('none until contract; then ACCESS EXCLUSIVE (catalog only, instant)');
  });
});
