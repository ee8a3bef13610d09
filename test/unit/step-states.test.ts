import { isFinal, activeStepIds, busyStepIds } from '../../core/rollout/step-states';

describe('a step state that ends its direction gets a finishedAt', () => {
  test.each([
    ['pending', false],
    ['running', false],
    ['held', false],
    ['reverting', false],
    ['completed', true],
    ['failed', true],
    ['cancelled', true],
    ['reverted', true],
    ['skipped', true],
  ])('%s: %s', (state, final) => {
    expect(isFinal(state)).toBe(final);
  });
});

describe('which steps count as running', () => {
  const steps = (...states: string[]) => states.map((state, i) => ({ id: `s${i}`, state }));
  test.each([
    ['nothing started', steps('pending', 'pending'), [], []],
    ['one running', steps('completed', 'running', 'pending'), ['s1'], ['s1']],
    ['branches overlap, in graph order', steps('running', 'held', 'running'), ['s0', 's1', 's2'], ['s0', 's1', 's2']],
    ['a revert shows in progress, not in the step column', steps('reverted', 'reverting', 'skipped'), ['s1'], []],
    ['finished steps never', steps('completed', 'failed', 'cancelled', 'reverted', 'skipped'), [], []],
  ])('%s', (_, list, active, busy) => {
    expect(activeStepIds(list)).toEqual(active);
    expect(busyStepIds(list)).toEqual(busy);
    expect(activeStepIds(new Map(list.map((s) => [s.id, s])).values())).toEqual(active); // the workflow hands a Map's values
  });
});
