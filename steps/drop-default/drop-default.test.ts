import { dropDefault } from './plan';

describe('dropDefault', () => {
  test('plan: applied at once, reverted to the recorded default', () => {
    const p = dropDefault.describe({ kind: 'dropDefault', column: 'status' }, { id: 'd', table: 'public.orders', rollbackWindowMs: 0 });
    expect(p.forward).toMatch(/^record status's default, then ALTER COLUMN status DROP DEFAULT/);
    expect(p.rollback).toBe('SET DEFAULT to the recorded default');
    expect(p.lock).toBe('ACCESS EXCLUSIVE (catalog only, instant)');
    expect(p.online).toBe(true);
  });
});
