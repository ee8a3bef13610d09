import { dropColumn } from './plan';
import { dropColumnStep } from './schema';
import { parseRolloutSpec } from '../spec';

const ctx = { id: 'dc', table: 'public.orders', rollbackWindowMs: 0 };

describe('dropColumn', () => {
  test('plan with down: hidden, the insert trigger, dropped at contract; the revert drops the trigger', () => {
    const p = dropColumn.describe(dropColumnStep.parse({ kind: 'dropColumn', column: 'status', down: "'new'" }), ctx);
    expect(p.forward).toBe(
      "hide column status from the new version's view; a trigger sets it to ('new') on inserts that leave it NULL (the new version's); drop column status at contract",
    );
    expect(p.rollback).toBe('drop the trigger; the column was never gone');
    expect(p.lock).toMatch(/^SHARE ROW EXCLUSIVE \(trigger creation, instant\)/);
    expect(p.online).toBe(true);
  });

  test('plan without down: nothing happens before contract', () => {
    const p = dropColumn.describe(dropColumnStep.parse({ kind: 'dropColumn', column: 'note' }), ctx);
    expect(p.forward).toBe("hide column note from the new version's view; drop column note at contract");
    expect(p.lock).toMatch(/^none until contract/);
  });

  test('shape: the column is dropped from the new view', () =>
    expect(dropColumn.shape!(dropColumnStep.parse({ kind: 'dropColumn', column: 'note' }))).toEqual({ dropped: ['note'] }));

  test.each([
    [{ column: '1x' }, 'steps.0.column'],
    [{ down: "'a'; delete from orders" }, 'steps.0.down'],
    [{ down: '' }, 'steps.0.down: down is empty'],
    [{ up: 'x' }, 'unknown field "up"'],
  ])('schema refuses %j (%s)', (patch, where) => {
    expect(() =>
      parseRolloutSpec({ kind: 'rollout', name: 'r', table: 't', steps: [{ kind: 'dropColumn', column: 'c', ...patch }] }),
    ).toThrow(where);
  });
});
