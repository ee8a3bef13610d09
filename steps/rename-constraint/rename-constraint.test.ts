import { renameConstraint } from './plan';
import { parseRolloutSpec } from '../spec';

describe('renameConstraint', () => {
  test('plan: the rename and its exact reverse', () => {
    const p = renameConstraint.describe(
      { kind: 'renameConstraint', from: 'a', to: 'b' },
      { id: 'r', table: 'public.orders', rollbackWindowMs: 0 },
    );
    expect(p.forward).toMatch(/^RENAME CONSTRAINT a TO b/);
    expect(p.rollback).toBe('RENAME CONSTRAINT b TO a');
  });
  test('schema: to must differ from from', () =>
    expect(() =>
      parseRolloutSpec({ kind: 'rollout', name: 'r', table: 't', steps: [{ kind: 'renameConstraint', from: 'a', to: 'a' }] }),
    ).toThrow('steps.0.to: to is the same name as from'));
});
