import { soak } from './plan';
import { soakStep } from './schema';
import { ctx, checks } from '../../test/unit/gate-checks';

describe('soak: the checks again and again, no lock', () => {
  test('soak: durations in milliseconds', () => {
    const step = soakStep.parse({ kind: 'soak', duration: '10m', every: '1m', checks, onFailure: 'pause' });
    expect(soak.describe(step, ctx).forward).toBe('re-run 2 check(s) every 1m for 10m; any breach: pause');
    if (soak.role !== 'soak') throw new Error('role');
    expect(soak.soak(step)).toMatchObject({ durationMs: 600_000, everyMs: 60_000, onFailure: 'pause' });
  });
});
