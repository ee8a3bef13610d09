import { dropNotNull } from './plan';

describe('dropNotNull', () => {
  test('plan: at once; the revert goes through a validated check, never a long lock', () => {
    const p = dropNotNull.describe({ kind: 'dropNotNull', column: 'qty' }, { id: 'd', table: 'public.orders', rollbackWindowMs: 0 });
    expect(p.forward).toMatch(/^ALTER COLUMN qty DROP NOT NULL/);
    expect(p.rollback).toMatch(/NOT VALID, VALIDATE, SET NOT NULL/);
    expect(p.lock).toMatch(/SHARE UPDATE EXCLUSIVE while VALIDATE scans/);
  });
});
