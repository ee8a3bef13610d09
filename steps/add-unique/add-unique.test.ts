import { addUnique } from './plan';
import { uniqueNameOf } from '../../core/rollout/object-names';
import { parseRolloutSpec } from '../spec';

describe('addUnique', () => {
  test('plan: duplicates looked for first, concurrent build, attached in an instant', () => {
    const p = addUnique.describe({ kind: 'addUnique', columns: ['email'] }, { id: 'u', table: 'public.users', rollbackWindowMs: 0 });
    expect(p.forward).toBe(
      'look for duplicate (email) first (fail naming up to 5 of them, nothing locked); CREATE UNIQUE INDEX CONCURRENTLY users_email_key; ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key',
    );
    expect(p.rollback).toMatch(/^DROP CONSTRAINT users_email_key/);
    expect(p.lock).toMatch(/SHARE UPDATE EXCLUSIVE.*ACCESS EXCLUSIVE \(catalog only, instant\)/);
    expect(p.online).toBe(true);
  });
  test('the name: given, or <table>_<columns>_key', () => {
    expect(uniqueNameOf({ columns: ['a', 'B'] }, 'public.t')).toBe('t_a_B_key');
    expect(uniqueNameOf({ name: 'mine', columns: ['a'] }, 'public.t')).toBe('mine');
  });
  test.each([
    [{}, 'steps.0.columns: columns is required'],
    [{ columns: [] }, 'columns is empty'],
    [{ columns: ['a', 'a'] }, 'steps.0.columns: columns names a column twice'],
  ])('schema refuses %j', (step, message) =>
    expect(() => parseRolloutSpec({ kind: 'rollout', name: 'r', table: 't', steps: [{ kind: 'addUnique', ...step }] })).toThrow(message),
  );
});
