import { addCheck } from './plan';
import { parseRolloutSpec } from '../spec';

describe('addCheck', () => {
  test('plan: NOT VALID then VALIDATE; revert drops it; online', () => {
    const p = addCheck.describe(
      { kind: 'addCheck', name: 'positive', expression: 'qty > 0' },
      { id: 'c', table: 'public.orders', rollbackWindowMs: 0 },
    );
    expect(p.forward).toBe('ADD CONSTRAINT positive CHECK (qty > 0) NOT VALID, then VALIDATE CONSTRAINT');
    expect(p.rollback).toBe('DROP CONSTRAINT positive');
    expect(p.lock).toMatch(/SHARE UPDATE EXCLUSIVE while VALIDATE/);
    expect(p.online).toBe(true);
  });
  test.each([
    [{ name: 'bad name' }, /steps\.0\.name/],
    [{ expression: 'true; drop table t' }, /steps\.0\.expression: expression must be one SQL expression/],
  ])('schema refuses %j', (patch, msg) => {
    expect(() =>
      parseRolloutSpec({
        kind: 'rollout',
        name: 'r',
        table: 't',
        steps: [{ kind: 'addCheck', name: 'ok', expression: 'x > 0', ...patch }],
      }),
    ).toThrow(msg);
  });
});
