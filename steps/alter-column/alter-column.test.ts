import { alterColumn } from './plan';
import { alterColumnStep } from './schema';
import { newColumnName } from '../../core/rollout/object-names';
import { parseRolloutSpec, SpecError } from '../spec';

const ctx = { id: 'a', table: 'public.orders', rollbackWindowMs: 0 };
const spec = (step: object) => ({
  kind: 'rollout',
  name: 'r',
  table: 'orders',
  steps: [{ kind: 'alterColumn', column: 'amount', up: 'amount * 100', down: 'amount / 100', ...step }],
});

describe('alterColumn', () => {
  test.each([
    [{ newType: 'bigint' }, 'amount_stagefill_new', 'amount'],
    [{ newName: 'amount_cents' }, 'amount_cents', 'amount_cents'],
  ])('%j: new column %s, shown as %s in the new version', (patch, by, as) => {
    const step = alterColumnStep.parse({ kind: 'alterColumn', column: 'amount', up: 'u', down: 'd', ...patch });
    expect(newColumnName(step)).toBe(by);
    expect(alterColumn.shape!(step)).toEqual({ replaced: [{ column: 'amount', by, as }] });
  });

  test('plan: two-way triggers, revert leaves the old column, instant catalog-only lock, online', () => {
    const p = alterColumn.describe(
      alterColumnStep.parse({ kind: 'alterColumn', column: 'amount', newType: 'bigint', up: 'u', down: 'd' }),
      ctx,
    );
    expect(p.forward).toMatch(/^ADD COLUMN amount_stagefill_new bigint; two-way triggers/);
    expect(p.rollback).toBe('drop the triggers and column amount_stagefill_new (with its counterparts); amount untouched');
    expect(p.lock).toBe('ACCESS EXCLUSIVE (catalog only, instant)');
    expect(p.online).toBe(true);
  });

  test('needs newName, newType or both, reported at the step', () => {
    try {
      parseRolloutSpec(spec({}));
      throw new Error('expected a SpecError');
    } catch (err) {
      expect(err).toBeInstanceOf(SpecError);
      expect((err as SpecError).issues).toContainEqual({ path: 'steps.0', message: 'alterColumn needs newName, newType or both' });
    }
    expect(parseRolloutSpec(spec({ newType: 'bigint' })).steps[0]).toMatchObject({ kind: 'alterColumn', newType: 'bigint' });
  });

  test('down is required: a two-way sync needs both directions', () =>
    expect(() => parseRolloutSpec(spec({ newType: 'bigint', down: undefined }))).toThrow(/steps\.0\.down/));
});
