import { dropIndex } from './plan';
import { parseRolloutSpec } from '../spec';

describe('dropIndex', () => {
  test('plan: deferred to contract, nothing to revert, CONCURRENTLY', () => {
    const p = dropIndex.describe({ kind: 'dropIndex', name: 'orders_qty' }, { id: 'd', table: 'public.orders', rollbackWindowMs: 0 });
    expect(p.forward).toMatch(/stays until contract.*DROP INDEX CONCURRENTLY orders_qty/);
    expect(p.rollback).toMatch(/^nothing/);
    expect(p.lock).toMatch(/^none until contract; then SHARE UPDATE EXCLUSIVE/);
    expect(p.online).toBe(true);
  });
  test('schema: name is required and a plain identifier', () => {
    expect(() => parseRolloutSpec({ kind: 'rollout', name: 'r', table: 't', steps: [{ kind: 'dropIndex' }] })).toThrow(
      'steps.0.name: name is required',
    );
    expect(() => parseRolloutSpec({ kind: 'rollout', name: 'r', table: 't', steps: [{ kind: 'dropIndex', name: 'a.b' }] })).toThrow(
      'plain SQL identifier',
    );
  });
});
