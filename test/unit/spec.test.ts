import type { SpecError } from '../../steps/spec';
import { parseBackfillSpec, parseRolloutSpec } from '../../steps/spec';
import { backfillSpec, rejection as problems } from './spec-problems';

const backfill = backfillSpec;

describe('backfill spec', () => {
  test('a good spec parses with defaults filled in', () => {
    const s = parseBackfillSpec({ ...backfill, parallelism: undefined });
    expect(s.parallelism).toBe(2);
    expect(s.lockTimeoutMs).toBe(2000);
    expect(s.statementTimeoutMs).toBe(60_000);
  });

  test('a window duration is parsed to milliseconds and the time zone checked', () => {
    const s = parseBackfillSpec({ ...backfill, window: { start: '01:00', duration: '4h', timeZone: 'Europe/Berlin' } });
    expect(s.window).toEqual({ start: '01:00', duration: 4 * 3_600_000, timeZone: 'Europe/Berlin' });
  });

  test.each([
    ['missing field', { ...backfill, chunkSize: undefined }, /^chunkSize: chunkSize is required/],
    ['unknown field', { ...backfill, chunksize: 10 }, /unknown field "chunksize"/],
    ['wrong type', { ...backfill, chunkSize: '1000' }, /^chunkSize: /],
    ['zero chunk size', { ...backfill, chunkSize: 0 }, /chunkSize must be at least 1/],
    ['negative parallelism', { ...backfill, parallelism: -1 }, /parallelism must be at least 1/],
    ['absurd parallelism', { ...backfill, parallelism: 10_000 }, /parallelism must be at most 64/],
    ['transform without :lo/:hi', { ...backfill, transform: 'UPDATE public.orders SET total = 1' }, /transform must use both :lo and :hi/],
    ['transform that is DDL', { ...backfill, transform: 'DROP TABLE public.orders -- :lo :hi' }, /transform must be DML/],
    ['two statements', { ...backfill, transform: 'UPDATE t SET a = 1 WHERE id >= :lo AND id < :hi; DROP TABLE t' }, /single statement/],
    ['quote in table', { ...backfill, table: 'public."orders' }, /^table: table must be/],
    ['semicolon in table', { ...backfill, table: 'orders; DROP TABLE x' }, /^table: /],
    ['sql in key', { ...backfill, key: 'id) OR (1=1' }, /^key: key must be a plain SQL identifier/],
    ['bad window start', { ...backfill, window: { start: '25:00', duration: '1h' } }, /window.start/],
    ['bad duration', { ...backfill, window: { start: '01:00', duration: 'forever' } }, /is not a duration/],
    ['bad time zone', { ...backfill, window: { start: '01:00', duration: '1h', timeZone: 'Mars/Olympus' } }, /IANA time zone/],
    ['unknown kind', { ...backfill, kind: 'migration' }, /kind must be "backfill" or "rollout"/],
  ])('%s is rejected naming the field', (_what, input, pattern) => {
    const found = problems(input);
    expect(found.some((p) => pattern.test(p))).toBe(true);
  });

  test('a semicolon inside a string literal is not a second statement', () => {
    expect(() => parseBackfillSpec({ ...backfill, transform: "UPDATE t SET note = 'a;b' WHERE id >= :lo AND id < :hi;" })).not.toThrow();
  });
});

const rollout = {
  kind: 'rollout',
  name: 'orders-cents',
  table: 'public.orders',
  steps: [
    { kind: 'addColumn', column: 'amount_cents', type: 'bigint', up: 'round(amount * 100)::bigint' },
    {
      kind: 'gate',
      checks: [{ name: 'no nulls', sql: 'SELECT count(*) FROM public.orders WHERE amount_cents IS NULL', expect: { eq: 0 } }],
    },
    { kind: 'expose', version: 2 },
    { kind: 'contract', drops: ['amount'] },
  ],
};

describe('rollout spec', () => {
  test('a linear rollout parses; steps get defaults', () => {
    const s = parseRolloutSpec(rollout);
    expect(s.steps).toHaveLength(4);
    expect(s.maxConcurrentSteps).toBe(4);
    expect(s.steps[1]).toMatchObject({ kind: 'gate', onFailure: 'rollback' });
  });

  test.each([
    ['addColumn without up', { ...rollout, steps: [{ kind: 'addColumn', column: 'c', type: 'int' }] }, /^steps.0.up: up is required/],
    ['sql without revert', { ...rollout, steps: [{ kind: 'sql', apply: 'CREATE INDEX ...' }] }, /^steps.0.revert: revert is required/],
    ['unknown step kind', { ...rollout, steps: [{ kind: 'explode' }] }, /kind must be one of/],
    [
      'contract before the end',
      { ...rollout, steps: [rollout.steps[3], rollout.steps[0]] },
      /contract step "1-contract" is irreversible|must be the last step/,
    ],
    [
      'check with neither expect nor unchanged',
      { ...rollout, steps: [{ kind: 'gate', checks: [{ name: 'x', sql: 'SELECT 1' }] }] },
      /exactly one of expect/,
    ],
    [
      'hostile column name',
      { ...rollout, steps: [{ kind: 'addColumn', column: 'x"; DROP TABLE t; --', type: 'int', up: '1' }] },
      /^steps.0.column: column must be a plain SQL identifier/,
    ],
    [
      'type with SQL in it',
      { ...rollout, steps: [{ kind: 'addColumn', column: 'x', type: 'int; DROP TABLE t', up: '1' }] },
      /^steps.0.type: /,
    ],
  ])('%s is rejected naming the field', (_what, input, pattern) => {
    const found = problems(input);
    expect(found.some((p) => pattern.test(p))).toBe(true);
  });

  test('a cycle is rejected naming the ids', () => {
    const found = problems({
      ...rollout,
      steps: [
        { id: 'a', kind: 'sql', apply: 'SELECT 1', revert: 'SELECT 1', dependsOn: ['b'] },
        { id: 'b', kind: 'sql', apply: 'SELECT 1', revert: 'SELECT 1', dependsOn: ['a'] },
      ],
    });
    expect(found.join('\n')).toMatch(/dependency cycle: (a -> b -> a|b -> a -> b)/);
  });

  test('an unknown dependsOn is rejected naming both ids', () => {
    const found = problems({ ...rollout, steps: [{ id: 'a', kind: 'sql', apply: 'SELECT 1', revert: 'SELECT 1', dependsOn: ['nope'] }] });
    expect(found.join('\n')).toMatch(/step "a" depends on unknown step "nope"/);
  });

  test('a duplicate id is rejected', () => {
    const step = { id: 'a', kind: 'sql', apply: 'SELECT 1', revert: 'SELECT 1' };
    expect(problems({ ...rollout, steps: [step, step] }).join('\n')).toMatch(/duplicate step id "a"/);
  });
});

describe('lock timeouts for DDL', () => {
  const rollout = (extra: object, step: object = {}) => ({
    kind: 'rollout',
    name: 'r',
    table: 't',
    ...extra,
    steps: [{ kind: 'setNotNull', column: 'c', ...step }],
  });
  test('optional on the rollout and on each step; absent means the 3s default at run time', () => {
    const s = parseRolloutSpec(rollout({ lockTimeoutMs: 500 }, { lockTimeoutMs: 250 }));
    expect(s.lockTimeoutMs).toBe(500);
    expect(s.steps[0]).toMatchObject({ lockTimeoutMs: 250 });
    expect(parseRolloutSpec(rollout({})).lockTimeoutMs).toBeUndefined();
  });
  test.each([
    [{ lockTimeoutMs: 0 }, {}, /^lockTimeoutMs: lockTimeoutMs must be at least 1/],
    [{}, { lockTimeoutMs: 700_000 }, /^steps\.0\.lockTimeoutMs: lockTimeoutMs must be at most 600000/],
  ])('%j %j is refused', (extra, step, msg) => {
    try {
      parseRolloutSpec(rollout(extra, step));
      throw new Error('expected a SpecError');
    } catch (err) {
      expect((err as SpecError).issues.map((i) => `${i.path}: ${i.message}`).join('\n')).toMatch(msg);
    }
  });
});
