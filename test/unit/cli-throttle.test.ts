import { parseRefresh } from '../../client/cli-control';
import { validateThrottleChange } from '../../core/backfill/throttle';

test.each([
  ['off', false],
  ['60000', { everyMs: 60_000 }],
  ['120000/8000', { everyMs: 120_000, holdMs: 8_000 }],
])('--baseline-refresh %s', (v, expected) => {
  expect(parseRefresh(v)).toEqual(expected);
  // what the CLI sends passes the workflow's validator
  expect(() => validateThrottleChange({ latency: { p99Ratio: 2, refresh: parseRefresh(v) } })).not.toThrow();
});

test.each(['soon', '60000/', '/5000', '-1', '1.5'])('--baseline-refresh %s is refused naming the flag and the forms', (v) => {
  expect(() => parseRefresh(v)).toThrow(/--baseline-refresh: expected off, everyMs or everyMs\/holdMs/);
});
