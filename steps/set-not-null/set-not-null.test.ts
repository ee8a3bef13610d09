import { notNullCheckExpression, notNullCheckName } from './sql';
import { setNotNull } from './plan';
import { parseRolloutSpec } from '../spec';

describe('setNotNull', () => {
  test.each([
    ['amount', '"amount" IS NOT NULL'],
    ['CustomerId', '"CustomerId" IS NOT NULL'],
    ['with$dollar', '"with$dollar" IS NOT NULL'],
  ])('the helper check over %s quotes the column: %s', (column, sql) => expect(notNullCheckExpression(column)).toBe(sql));

  test('a double quote in a name is escaped, never closes the identifier', () =>
    expect(notNullCheckExpression('a"b')).toBe('"a""b" IS NOT NULL'));

  test('the helper check name is stable, per table and column, and fits in 63 characters', () => {
    const a = notNullCheckName('public.orders', 'amount');
    expect(a).toBe(notNullCheckName('public.orders', 'amount'));
    expect(a).not.toBe(notNullCheckName('public.orders2', 'amount'));
    expect(a.startsWith('amount_stagefill_nn_')).toBe(true);
    expect(notNullCheckName('public.t', 'x'.repeat(63)).length).toBeLessThanOrEqual(63);
  });

  test('plan: three phases named, catalog-only exclusive lock plus a validating scan, online', () => {
    const p = setNotNull.describe({ kind: 'setNotNull', column: 'amount' }, { id: 'nn', table: 'public.orders', rollbackWindowMs: 0 });
    expect(p.forward).toMatch(/NOT VALID.*VALIDATE.*SET NOT NULL/);
    expect(p.rollback).toMatch(/DROP NOT NULL/);
    expect(p.lock).toMatch(/ACCESS EXCLUSIVE \(catalog only, instant\).*SHARE UPDATE EXCLUSIVE/);
    expect(p.online).toBe(true);
  });

  test('schema: column must be a plain identifier', () => {
    expect(() => parseRolloutSpec({ kind: 'rollout', name: 'r', table: 't', steps: [{ kind: 'setNotNull', column: 'a b' }] })).toThrow(
      /steps\.0\.column: column must be a plain SQL identifier/,
    );
    expect(
      parseRolloutSpec({ kind: 'rollout', name: 'r', table: 't', steps: [{ kind: 'setNotNull', column: 'MixedCase' }] }).steps[0],
    ).toMatchObject({ column: 'MixedCase' });
  });
});
