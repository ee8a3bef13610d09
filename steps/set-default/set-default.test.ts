import { setDefault } from './plan';
import { parseRolloutSpec } from '../spec';

describe('setDefault', () => {
  test('plan: records the old default, its exact revert, an instant lock', () => {
    const p = setDefault.describe(
      { kind: 'setDefault', column: 'qty', default: '1' },
      { id: 's', table: 'public.orders', rollbackWindowMs: 0 },
    );
    expect(p.forward).toBe("record qty's current default, then ALTER COLUMN qty SET DEFAULT 1 (new rows only; no rewrite)");
    expect(p.rollback).toMatch(/recorded default back/);
    expect(p.lock).toBe('ACCESS EXCLUSIVE (catalog only, instant)');
  });
  test('schema: one expression', () =>
    expect(() =>
      parseRolloutSpec({
        kind: 'rollout',
        name: 'r',
        table: 't',
        steps: [{ kind: 'setDefault', column: 'a', default: '1; drop table t' }],
      }),
    ).toThrow('default must be one SQL expression'));
});
