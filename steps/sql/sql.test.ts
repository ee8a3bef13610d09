import { sql } from './plan';
import { parseRolloutSpec } from '../spec';

describe('sql', () => {
  test('plan: both statements on one line, cut at 120 characters; not online (its locks are unknown)', () => {
    const p = sql.describe(
      { kind: 'sql', apply: 'CREATE TABLE\n  x (a int)', revert: `DROP TABLE x -- ${'y'.repeat(200)}` },
      { id: 's', table: 'public.t', rollbackWindowMs: 0 },
    );
    expect(p.forward).toBe('run: CREATE TABLE x (a int)');
    expect(p.rollback.length).toBe('run: '.length + 120);
    expect(p.rollback.endsWith('...')).toBe(true);
    expect(p.online).toBe(false);
  });
  test('a revert is required', () => {
    expect(() => parseRolloutSpec({ kind: 'rollout', name: 'r', table: 't', steps: [{ kind: 'sql', apply: 'select 1' }] })).toThrow(
      /steps\.0\.revert: revert is required/,
    );
    expect(() =>
      parseRolloutSpec({ kind: 'rollout', name: 'r', table: 't', steps: [{ kind: 'sql', apply: 'select 1', revert: '' }] }),
    ).toThrow(/revert is empty/);
  });
});
