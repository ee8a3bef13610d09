import { addColumn } from './plan';
import { addColumnStep } from './schema';
import { parseRolloutSpec } from '../spec';

const ctx = { id: 'total', table: 'public.orders', rollbackWindowMs: 0 };

describe('addColumn', () => {
  const step = addColumnStep.parse({ kind: 'addColumn', column: 'total', type: 'numeric(12,2)', up: 'price * qty' });

  test('plan: what it does, its revert, an instant catalog-only lock, online', () => {
    const p = addColumn.describe(step, ctx);
    expect(p.forward).toBe(
      'ADD COLUMN total numeric(12,2); dual-write trigger sets it to (price * qty) on every insert/update; backfill existing rows with the same expression',
    );
    expect(p.rollback).toBe('drop the trigger and column total');
    expect(p.lock).toBe('ACCESS EXCLUSIVE (catalog only, instant)');
    expect(p.online).toBe(true);
    expect(p.isReversible).not.toBe(false);
  });

  test('plan: a DEFAULT is named, with the rewrite a volatile one would cause', () => {
    const p = addColumn.describe({ ...step, default: '0' }, ctx);
    expect(p.forward).toContain('DEFAULT 0');
    expect(p.lock).toMatch(/volatile DEFAULT would rewrite/);
  });

  test('shape: the column is new, so the legacy view does not show it', () => expect(addColumn.shape!(step)).toEqual({ added: ['total'] }));

  test.each([
    [{ type: 'bigint; drop table x' }, 'steps.0.type'],
    [{ up: 'a; b' }, 'steps.0.up'],
    [{ column: '1abc' }, 'steps.0.column'],
    [{ surprise: 1 }, 'unknown field "surprise"'],
  ])('schema refuses %j (%s)', (patch, where) => {
    expect(() =>
      parseRolloutSpec({
        kind: 'rollout',
        name: 'r',
        table: 't',
        steps: [{ kind: 'addColumn', column: 'c', type: 'int', up: '1', ...patch }],
      }),
    ).toThrow(where);
  });

  test('schema: backfill tuning gets its defaults', () => {
    const s = addColumnStep.parse({ kind: 'addColumn', column: 'c', type: 'int', up: '1', backfill: {} });
    expect(s.backfill).toMatchObject({ chunkSize: 5000, key: 'id', parallelism: 2 });
  });
});
