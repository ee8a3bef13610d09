import { evaluateCheck } from '../../core/rollout/checks';

const check = (c: object) => ({ name: 'c', sql: 'select 1', tolerance: 0, ...c });

describe('gate checks', () => {
  test.each([
    ['bound met', check({ expect: { eq: 0 } }), '0', {}, { ok: true, deviation: 0, expected: '= 0' }],
    ['bound missed', check({ expect: { lte: 5 } }), '7', {}, { ok: false, deviation: 2 }],
    ['NULL against a bound', check({ expect: { eq: 0 } }), null, {}, { ok: false }],
    ['unchanged number within tolerance', check({ unchanged: true, tolerance: 2 }), '101', { 'g/c': '100' }, { ok: true, deviation: 0 }],
    ['unchanged number outside tolerance', check({ unchanged: true, tolerance: 2 }), '105', { 'g/c': '100' }, { ok: false, deviation: 3 }],
    ['unchanged text equal', check({ unchanged: true }), 'abc', { 'g/c': 'abc' }, { ok: true, deviation: 0 }],
    ['unchanged text differs', check({ unchanged: true }), 'abd', { 'g/c': 'abc' }, { ok: false, deviation: null }],
    [
      'no baseline taken',
      check({ unchanged: true }),
      '1',
      {},
      { ok: false, error: 'no baseline was taken for "g/c" at the rollout start' },
    ],
  ])('%s', (_, c, value, baselines, want) => {
    expect(evaluateCheck('g', baselines, c as never, value)).toMatchObject(want);
  });
  test('a query error fails the check and carries the message', () => {
    expect(evaluateCheck('g', {}, check({ expect: { eq: 0 } }) as never, null, 'relation "x" does not exist')).toMatchObject({
      ok: false,
      value: null,
      error: 'relation "x" does not exist',
    });
  });
});
