import { dropTable } from './plan';
import { dropTableStep } from './schema';
import { parseRolloutSpec } from '../spec';

describe('dropTable', () => {
  const step = dropTableStep.parse({ kind: 'dropTable' });
  test('plan: hidden at expose, dropped at contract; nothing to undo; no lock before contract', () => {
    const p = dropTable.describe(step, { id: 'd', table: 'public.audit_old', rollbackWindowMs: 0 });
    expect(p.forward).toBe(
      "check nothing else depends on public.audit_old; the new version's view schema holds no view of it (expose); drop table public.audit_old and its view schemas at contract",
    );
    expect(p.rollback).toMatch(/^nothing to undo/);
    expect(p.lock).toBe('none until contract: ACCESS EXCLUSIVE (drop table, instant)');
    expect(p.online).toBe(true);
  });
  test('shape: the new version does not see the table', () => expect(dropTable.shape!(step)).toEqual({ isTableHidden: true }));
  test('schema refuses unknown fields', () => {
    expect(() => parseRolloutSpec({ kind: 'rollout', name: 'r', table: 't', steps: [{ kind: 'dropTable', cascade: true }] })).toThrow(
      'unknown field "cascade"',
    );
  });
});
