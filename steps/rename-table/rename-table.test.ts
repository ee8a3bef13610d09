import { renameTable } from './plan';
import { renameTableStep } from './schema';
import { parseRolloutSpec } from '../spec';

describe('renameTable', () => {
  const step = renameTableStep.parse({ kind: 'renameTable', to: 'purchases' });
  test('plan: the new name at expose, the rename at contract; nothing to undo', () => {
    const p = renameTable.describe(step, { id: 'r', table: 'public.orders', rollbackWindowMs: 0 });
    expect(p.forward).toBe(
      "check the name purchases is free next to public.orders; the new version's view schema shows the table as purchases (expose); rename public.orders to purchases at contract",
    );
    expect(p.rollback).toMatch(/^nothing to undo/);
    expect(p.lock).toBe('none until contract: ACCESS EXCLUSIVE (catalog only, instant)');
  });
  test('shape: the new version sees the new name', () => expect(renameTable.shape!(step)).toEqual({ tableRenamedTo: 'purchases' }));
  test.each([
    [{ to: 'public.purchases' }, 'steps.0.to'],
    [{ to: undefined }, 'steps.0.to: to is required'],
    [{ table: 'public.orders', to: 'orders' }, "steps.0.to: to is the table's own name"],
  ])('schema refuses %j (%s)', (patch, where) => {
    expect(() =>
      parseRolloutSpec({ kind: 'rollout', name: 'r', table: 't', steps: [Object.assign({ kind: 'renameTable', to: 'x' }, patch)] }),
    ).toThrow(where);
  });
});
