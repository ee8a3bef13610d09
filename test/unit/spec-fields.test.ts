import { specProblems as problems } from './spec-problems';
import { columnNames, lockTimeoutMs } from '../../core/common/fields';
import { at } from '../at';

const rollout = (extra: object, step: object) => ({ kind: 'rollout', name: 'r', table: 't', ...extra, steps: [step] });

describe('lockTimeoutMs: one field, the same bounds on a rollout and on a step', () => {
  test.each<[string, unknown, string | null]>([
    ['absent', undefined, null],
    ['1 ms', 1, null],
    ['10 minutes', 600_000, null],
    ['0', 0, 'lockTimeoutMs must be at least 1'],
    ['over 10 minutes', 600_001, 'lockTimeoutMs must be at most 600000 (10 minutes)'],
    ['a fraction', 1.5, 'Expected integer'],
  ])('%s', (_name, value, message) => {
    const step = { kind: 'setNotNull', column: 'c' };
    const onRollout = problems(rollout({ lockTimeoutMs: value }, step));
    const onStep = problems(rollout({}, { ...step, lockTimeoutMs: value }));
    if (message === null) {
      expect(onRollout).toEqual([]);
      expect(onStep).toEqual([]);
    } else {
      expect(onRollout).toHaveLength(1);
      expect(onRollout[0]).toContain(`lockTimeoutMs: ${message}`);
      expect(onStep).toHaveLength(1);
      expect(onStep[0]).toContain(`steps.0.lockTimeoutMs: ${message}`);
    }
    expect(lockTimeoutMs.safeParse(value).success).toBe(message === null);
  });
});

describe('columnNames: a required, non-empty list of plain identifiers', () => {
  test.each<[string, unknown, string | null]>([
    ['one column', ['a'], null],
    ['several', ['a', 'b_2'], null],
    ['absent', undefined, 'columns is required: what they are for'],
    ['empty', [], 'columns is empty'],
    ['a quoted name', ['"a"'], 'columns[] must be a plain SQL identifier'],
    ['not a list', 'a', 'Expected array'],
  ])('%s', (_name, value, message) => {
    const r = columnNames('columns', 'what they are for').safeParse(value);
    if (message === null) expect(r.success).toBe(true);
    else expect(r.success ? '' : at(r.error.issues, 0).message).toContain(message);
  });

  test('without a purpose the message stops at "is required"', () => {
    const r = columnNames('references.columns').safeParse(undefined);
    expect(r.success ? '' : at(r.error.issues, 0).message).toBe('references.columns is required');
  });

  test.each<[string, object, string]>([
    ['addUnique without columns', { kind: 'addUnique' }, 'steps.0.columns: columns is required'],
    [
      'addForeignKey without columns',
      { kind: 'addForeignKey', references: { table: 'p', columns: ['id'] } },
      'steps.0.columns: columns is required',
    ],
    [
      'addForeignKey with no referenced columns',
      { kind: 'addForeignKey', columns: ['p_id'], references: { table: 'p', columns: [] } },
      'steps.0.references.columns: references.columns is empty',
    ],
  ])('%s', (_name, step, message) => {
    expect(problems(rollout({}, step)).some((p) => p.startsWith(message))).toBe(true);
  });
});
