import { sql } from './plan';
import { sqlStep } from './schema';
import { parseRolloutSpec } from '../spec';

const ctx = { id: 's', table: 'public.t', rollbackWindowMs: 0 };
const spec = (step: object) => ({ kind: 'rollout', name: 'r', table: 'public.t', steps: [{ kind: 'sql', ...step }] });
const index = {
  apply: 'CREATE INDEX CONCURRENTLY t_a_idx ON public.t (a)',
  revert: 'DROP INDEX CONCURRENTLY IF EXISTS public.t_a_idx',
  transaction: false,
  check: "SELECT to_regclass('public.t_a_idx') IS NOT NULL",
};

describe('sql: transaction: false and onContract', () => {
  test('plan: outside a transaction, guarded by check, both ways', () => {
    const p = sql.describe(sqlStep.parse({ kind: 'sql', ...index }), ctx);
    expect(p.forward).toBe('run outside a transaction, unless check says it ran: CREATE INDEX CONCURRENTLY t_a_idx ON public.t (a)');
    expect(p.rollback).toBe('run outside a transaction, if check says apply ran: DROP INDEX CONCURRENTLY IF EXISTS public.t_a_idx');
    expect(p.lock).toMatch(/each statement on its own/);
  });

  test('plan: onContract alone has nothing to undo', () => {
    const p = sql.describe(sqlStep.parse({ kind: 'sql', onContract: 'DROP TABLE old_orders' }), ctx);
    expect(p.forward).toBe('at contract run: DROP TABLE old_orders');
    expect(p.rollback).toBe('nothing to undo (onContract never runs before contract)');
  });

  test('a step in a transaction is described as before', () => {
    expect(sql.describe(sqlStep.parse({ kind: 'sql', apply: 'select 1', revert: 'select 2' }), ctx).forward).toBe('run: select 1');
  });

  test.each([
    ['accepts a guarded statement outside a transaction', index, null],
    ['accepts onContract alone', { onContract: 'select 1' }, null],
    ['accepts apply + revert + onContract', { apply: 'select 1', revert: 'select 2', onContract: 'select 3' }, null],
    [
      'refuses transaction: false without check',
      { ...index, check: undefined },
      /steps\.0\.check: check is required with transaction: false/,
    ],
    [
      'refuses two statements outside a transaction',
      { ...index, apply: 'select 1; select 2' },
      /steps\.0\.apply: apply must be one statement with transaction: false/,
    ],
    ['refuses a check that is not a query', { ...index, check: 'DROP TABLE t' }, /steps\.0\.check: check must be a query/],
    [
      'refuses check in a transaction',
      { apply: 'select 1', revert: 'select 2', check: 'select true' },
      /check is only for transaction: false/,
    ],
    ['refuses a step with neither apply nor onContract', {}, /steps\.0\.apply: apply is required \(or onContract/],
    ['refuses apply without revert', { apply: 'select 1' }, /steps\.0\.revert: revert is required/],
    ['refuses revert without apply', { revert: 'select 1', onContract: 'select 2' }, /steps\.0\.revert: revert without apply/],
  ])('%s', (_, step, error) => {
    const parse = () => parseRolloutSpec(spec(step));
    if (error) expect(parse).toThrow(error);
    else expect(parse).not.toThrow();
  });
});
