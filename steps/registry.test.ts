import { STEP_KINDS, STEP_MODULES, stepModule, isStepKind } from '.';
import { stepActions } from './actions';
import { changesSchema } from './types';

describe('the step registry', () => {
  test('each kind once, the workflow kinds after the schema kinds, contract last', () => {
    expect(new Set(STEP_KINDS).size).toBe(STEP_KINDS.length);
    expect(STEP_KINDS).toEqual(
      expect.arrayContaining([
        'addColumn',
        'alterColumn',
        'setNotNull',
        'addCheck',
        'sql',
        'backfill',
        'gate',
        'expose',
        'soak',
        'approval',
        'contract',
      ]),
    );
    expect(STEP_KINDS.slice(-6)).toEqual(['backfill', 'gate', 'expose', 'soak', 'approval', 'contract']);
  });
  test.each(STEP_MODULES.map((m) => [m.kind, m]))(
    '%s: its schema is for its kind, it has actions, and a role-consistent apply',
    (kind, m) => {
      expect(m.schema.shape.kind.value).toBe(kind);
      expect(stepModule(kind)).toBe(m);
      const actions = stepActions(kind);
      // kinds the workflow runs itself have nothing to apply; kinds that change the schema do
      expect(actions.phases.length > 0).toBe(changesSchema(m.role));
      if (actions.irreversible) expect(m.role).toBe('contract');
    },
  );
  test('an unknown kind is named, with the known ones', () => {
    expect(isStepKind('createIndex2')).toBe(false);
    expect(() => stepModule('nope')).toThrow(/unknown step kind "nope"; this stagefill knows addColumn, alterColumn/);
  });
});
