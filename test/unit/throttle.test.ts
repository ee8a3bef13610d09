import { THROTTLE_LIMITS, THROTTLE_DEFAULTS } from '../../core/common/throttle-limits';
import { backfillStep } from '../../steps/backfill/schema';
import { columnBackfill } from '../../steps/row-sync';
import type { ThrottleChange, ThrottleSettings } from '../../core/backfill/throttle';
import {
  initialThrottle,
  validateThrottleChange,
  applyThrottleChange,
  adaptedChunkSize,
  isControlled,
  chunkSizeInForce,
} from '../../core/backfill/throttle';
import { backfillSpec } from '../../core/common/fields';

const base = {
  kind: 'backfill',
  name: 'bf',
  table: 'public.t',
  key: 'id',
  chunkSize: 1000,
  transform: 'UPDATE public.t SET x = 1 WHERE id >= :lo AND id < :hi',
};

describe('the throttle defaults come from one place', () => {
  test('a backfill step, the backfill of a column step and a backfill spec without parallelism run with THROTTLE_DEFAULTS', () => {
    const step = backfillStep.parse({ kind: 'backfill', transform: base.transform });
    expect([step.chunkSize, step.parallelism]).toEqual([THROTTLE_DEFAULTS.chunkSize, THROTTLE_DEFAULTS.parallelism]);
    const column = columnBackfill({ step: { kind: 'addColumn', up: '1' }, stepId: 'add', table: 'public.t', rolloutName: 'r' }, 'c');
    expect([column.chunkSize, column.parallelism]).toEqual([THROTTLE_DEFAULTS.chunkSize, THROTTLE_DEFAULTS.parallelism]);
    expect(backfillSpec.parse(base).parallelism).toBe(THROTTLE_DEFAULTS.parallelism);
  });
});

describe('chunkSizeInForce: the one rule for the chunk size a run uses', () => {
  test.each([
    ["the run's own size when nothing steers it", 1000, { chunkSize: 200 }, false, 1000],
    ["the run's own size while the controller has not decided", 1000, undefined, true, 1000],
    ['the decided size while a budget steers the run', 1000, { chunkSize: 200 }, true, 200],
    ["the run's own size when the decision holds (no size)", 1000, {}, true, 1000],
  ] as const)('%s', (_name, own, decision, isSteered, expected) => {
    expect(chunkSizeInForce(own, decision, isSteered)).toBe(expected);
  });
});

describe('the spec schema and setThrottle read the same limits', () => {
  test.each([
    ['chunkSize', THROTTLE_LIMITS.chunkSize],
    ['parallelism', THROTTLE_LIMITS.parallelism],
  ] as const)('%s: the spec takes the maximum and refuses one more, and so does setThrottle', (field, { min, max }) => {
    expect(backfillSpec.safeParse({ ...base, [field]: max }).success).toBe(true);
    expect(backfillSpec.safeParse({ ...base, [field]: max + 1 }).success).toBe(false);
    expect(backfillSpec.safeParse({ ...base, [field]: min - 1 }).success).toBe(false);
    expect(() => validateThrottleChange({ [field]: max })).not.toThrow();
    expect(() => validateThrottleChange({ [field]: max + 1 })).toThrow(
      new RegExp(`setThrottle\\.${field}: expected an integer from ${min} to ${max}`),
    );
  });

  test('throttle.targetChunkMs and maxChunkSize bounds come from THROTTLE_LIMITS', () => {
    const t = (throttle: object) => backfillSpec.safeParse({ ...base, throttle }).success;
    expect(t({ targetChunkMs: THROTTLE_LIMITS.targetChunkMs.min })).toBe(true);
    expect(t({ targetChunkMs: THROTTLE_LIMITS.targetChunkMs.min - 1 })).toBe(false);
    expect(t({ targetChunkMs: THROTTLE_LIMITS.targetChunkMs.max + 1 })).toBe(false);
    expect(t({ maxChunkSize: THROTTLE_LIMITS.chunkSize.max + 1 })).toBe(false);
  });

  test.each([
    [{ latency: { p99Ms: 5 } }, true],
    [{ latency: { p99Ratio: 2 } }, true],
    [{ latency: { p99Ratio: 2, probe: 'SELECT 1 FROM public.t WHERE id = 7' } }, true],
    [{ latency: {} }, false],
    [{ latency: { p99Ms: 5, p99Ratio: 2 } }, false],
    [{ latency: { p99Ratio: 1 } }, false],
    [{ latency: { p99Ms: 5, probe: 'DELETE FROM t' } }, false],
    // a transaction of the service: writes allowed, one statement per item, no DDL or transaction control
    [{ latency: { p99Ms: 5, probe: ['UPDATE t SET n = n WHERE id = 7', 'SELECT n FROM t WHERE id = 7'] } }, true],
    [{ latency: { p99Ms: 5, probe: [] } }, false],
    [{ latency: { p99Ms: 5, probe: ['BEGIN', 'SELECT 1'] } }, false],
    [{ latency: { p99Ms: 5, probe: ['DROP TABLE t'] } }, false],
    [{ latency: { p99Ms: 5, probe: ['SELECT 1; SELECT 2'] } }, false],
    [{ latency: { p99Ms: 5, extra: 1 } }, false],
    // the baseline's off-windows: settable, or off
    [{ latency: { p99Ratio: 2, refresh: false } }, true],
    [{ latency: { p99Ratio: 2, refresh: { everyMs: 60_000, holdMs: 5_000 } } }, true],
    [{ latency: { p99Ratio: 2, refresh: { everyMs: 120_000 } } }, true],
    [{ latency: { p99Ratio: 2, refresh: { everyMs: 9_999 } } }, false],
    [{ latency: { p99Ratio: 2, refresh: { holdMs: 1_000 } } }, false],
    [{ latency: { p99Ratio: 2, refresh: { everyMs: 10_000, holdMs: 6_000 } } }, false],
    [{ latency: { p99Ratio: 2, refresh: true } }, false],
    [{ latency: { p99Ratio: 2, refresh: { every: 60_000 } } }, false],
    [{ maxReplicaLagMs: 5000, onReplicaMissing: 'ignore' }, true],
    [{ maxReplicaLagMs: 5 }, false],
    [{ maxReplicaLagMs: 5000, onReplicaMissing: 'maybe' }, false],
    [{ flushAfterKb: 0 }, true],
    [{ flushAfterKb: 2048 }, true],
    [{ flushAfterKb: 2049 }, false],
    [{ flushAfterKb: -1 }, false],
    [{ flushAfterKb: 1.5 }, false],
  ])('spec throttle %j parses: %s', (throttle, ok) => {
    expect(backfillSpec.safeParse({ ...base, throttle }).success).toBe(ok);
  });

  test("flushAfterKb over PostgreSQL's limit names the field and the limit", () => {
    const r = backfillSpec.safeParse({ ...base, throttle: { flushAfterKb: 4096 } });
    expect(JSON.stringify(r)).toContain('throttle.flushAfterKb must be at most 2048 (PostgreSQL takes at most 2 MB)');
  });

  test.each([
    [{ everyMs: 5_000 }, 'throttle.latency.refresh.everyMs must be at least 10000'],
    [{ everyMs: 10_000, holdMs: 6_000 }, 'throttle.latency.refresh.holdMs must be at most half of everyMs'],
    [true, 'throttle.latency.refresh must be false (measure the baseline once) or { everyMs, holdMs }'],
  ])('a bad latency.refresh %j names the field and the fix', (refresh, message) => {
    const r = backfillSpec.safeParse({ ...base, throttle: { latency: { p99Ratio: 2, refresh } } });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r)).toContain(message);
  });

  test('a bad latency budget in the spec names the field and the fix', () => {
    const r = backfillSpec.safeParse({ ...base, throttle: { latency: { p99Ms: 5, p99Ratio: 2 } } });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r)).toContain('throttle.latency needs exactly one of p99Ms');
  });
});

describe('initialThrottle', () => {
  test.each([
    [
      'defaults: bounds a tenth and ten times the chunk',
      { chunkSize: 1000, parallelism: 2 },
      { chunkSize: 1000, minChunkSize: 100, maxChunkSize: 10000, parallelism: 2 },
    ],
    [
      'a tiny chunk keeps a minimum of 1',
      { chunkSize: 5, parallelism: 1 },
      { chunkSize: 5, minChunkSize: 1, maxChunkSize: 50, parallelism: 1 },
    ],
    [
      "the spec's own bounds and limits",
      { chunkSize: 1000, parallelism: 3, throttle: { minChunkSize: 10, maxChunkSize: 2000, maxRowsPerSecond: 500, targetChunkMs: 200 } },
      { chunkSize: 1000, minChunkSize: 10, maxChunkSize: 2000, parallelism: 3, maxRowsPerSecond: 500, targetChunkMs: 200 },
    ],
    [
      'a latency budget and a replica-lag limit',
      { chunkSize: 1000, parallelism: 2, throttle: { latency: { p99Ms: 5 }, maxReplicaLagMs: 3000, onReplicaMissing: 'ignore' as const } },
      {
        chunkSize: 1000,
        minChunkSize: 100,
        maxChunkSize: 10000,
        parallelism: 2,
        latency: { p99Ms: 5 },
        maxReplicaLagMs: 3000,
        onReplicaMissing: 'ignore',
      },
    ],
  ])('%s', (_what, spec, expected) => {
    const t = initialThrottle(spec);
    expect(JSON.parse(JSON.stringify(t))).toEqual(expected);
  });

  test('a run without a budget carries no new fields (histories and payloads stay as they were)', () => {
    expect(Object.keys(initialThrottle({ chunkSize: 10, parallelism: 1 })).sort()).toEqual([
      'chunkSize',
      'maxChunkSize',
      'maxRowsPerSecond',
      'minChunkSize',
      'parallelism',
      'targetChunkMs',
    ]);
  });
});

describe('validateThrottleChange', () => {
  test.each([
    [{ chunkSize: 2000 }],
    [{ maxRowsPerSecond: null }],
    [{ maxRowsPerSecond: 12.5, targetChunkMs: 1 }],
    [{ parallelism: 64 }],
    [{ latency: { p99Ms: 3 } }],
    [{ latency: { p99Ratio: 2.5, probeEveryMs: 50 } }],
    [{ latency: { p99Ratio: 2, refresh: false } }],
    [{ latency: { p99Ratio: 2, refresh: { everyMs: 30_000, holdMs: 5_000 } } }],
    [{ latency: { p99Ms: 4, probe: ['UPDATE t SET n = n WHERE id = 1', 'SELECT 1'] } }],
    [{ latency: null }],
    [{ maxReplicaLagMs: 2000, onReplicaMissing: 'hold' }],
    [{ maxReplicaLagMs: null }],
  ] as [ThrottleChange][])('accepts %j', (change) => expect(() => validateThrottleChange(change)).not.toThrow());

  test.each([
    [null, /setThrottle takes an object/],
    [{ chunk: 5 }, /unknown field "chunk"; allowed: chunkSize/],
    [{ chunkSize: -5 }, /setThrottle\.chunkSize: expected an integer from 1/],
    [{ chunkSize: 1.5 }, /setThrottle\.chunkSize/],
    [{ parallelism: 65 }, /setThrottle\.parallelism: expected an integer from 1 to 64/],
    [{ targetChunkMs: 600_001 }, /setThrottle\.targetChunkMs/],
    [{ maxRowsPerSecond: 0 }, /setThrottle\.maxRowsPerSecond: expected a positive number/],
    [{ latency: { p99Ms: 5, p99Ratio: 2 } }, /setThrottle\.latency: give exactly one of p99Ms/],
    [{ latency: {} }, /setThrottle\.latency: give exactly one/],
    [{ latency: { p99Ratio: 0.5 } }, /setThrottle\.latency\.p99Ratio: expected a number from 1\.05/],
    [{ latency: { p99Ms: 5, probe: 'DROP TABLE x' } }, /setThrottle\.latency\.probe: expected a query/],
    [
      { latency: { p99Ms: 5, probe: ['SELECT 1', 'VACUUM t'] } },
      /setThrottle\.latency\.probe\[1\]: expected SELECT, WITH, VALUES, INSERT, UPDATE or DELETE/,
    ],
    [{ latency: { p99Ms: 5, probe: [] } }, /setThrottle\.latency\.probe: a transaction of 1 to 20 statements, got 0/],
    [
      { latency: { p99Ms: 5, probe: 'SELECT 1; DELETE FROM t' } },
      /setThrottle\.latency\.probe: a single query; for a transaction of several statements give a list/,
    ],
    [
      { latency: { p99Ms: 5, probe: ['SELECT 1', 'UPDATE t SET n = 1; DROP TABLE t'] } },
      /setThrottle\.latency\.probe\[1\]: one statement per list item/,
    ],
    [{ latency: { p99Ms: 5, budget: 1 } }, /setThrottle\.latency: unknown field "budget"/],
    [{ latency: 5 }, /setThrottle\.latency: expected an object/],
    [
      { latency: { p99Ratio: 2, refresh: true } },
      /setThrottle\.latency\.refresh: expected false \(measure the baseline once\) or an object/,
    ],
    [{ latency: { p99Ratio: 2, refresh: { everyMs: 1000 } } }, /setThrottle\.latency\.refresh\.everyMs: expected an integer from 10000/],
    [
      { latency: { p99Ratio: 2, refresh: { everyMs: 20_000, holdMs: 15_000 } } },
      /setThrottle\.latency\.refresh\.holdMs: at most half of everyMs/,
    ],
    [{ latency: { p99Ratio: 2, refresh: { often: 1 } } }, /setThrottle\.latency\.refresh: unknown field "often"/],
    [{ maxReplicaLagMs: 10 }, /setThrottle\.maxReplicaLagMs: expected an integer from 100/],
    [{ onReplicaMissing: 'wait' }, /setThrottle\.onReplicaMissing: expected "hold" or "ignore"/],
  ])('rejects %j', (change, message) => expect(() => validateThrottleChange(change as ThrottleChange)).toThrow(message));
});

describe('applyThrottleChange', () => {
  const t: ThrottleSettings = { chunkSize: 1000, minChunkSize: 100, maxChunkSize: 10000, parallelism: 2, maxRowsPerSecond: 500 };
  test.each([
    ['a chunk size inside the bounds', { chunkSize: 2000 }, { ...t, chunkSize: 2000 }],
    ['a chunk size below widens the minimum', { chunkSize: 50 }, { ...t, chunkSize: 50, minChunkSize: 50 }],
    ['a chunk size above widens the maximum', { chunkSize: 20000 }, { ...t, chunkSize: 20000, maxChunkSize: 20000 }],
    ['null drops the rate limit', { maxRowsPerSecond: null }, { ...t, maxRowsPerSecond: undefined }],
    ['a budget is set', { latency: { p99Ms: 4 } }, { ...t, latency: { p99Ms: 4 } }],
    [
      'a replica limit is set',
      { maxReplicaLagMs: 1000, onReplicaMissing: 'ignore' },
      { ...t, maxReplicaLagMs: 1000, onReplicaMissing: 'ignore' },
    ],
  ] as [string, ThrottleChange, ThrottleSettings][])('%s', (_what, change, expected) => {
    expect(applyThrottleChange(t, change)).toEqual(expected);
  });

  test('null drops a budget and a replica limit: the run is no longer controlled', () => {
    const controlled = applyThrottleChange(t, { latency: { p99Ratio: 2 }, maxReplicaLagMs: 500 });
    expect(isControlled(controlled)).toBe(true);
    const plain = applyThrottleChange(controlled, { latency: null, maxReplicaLagMs: null });
    expect(isControlled(plain)).toBe(false);
    expect(plain).toEqual(t);
  });
});

describe('adaptedChunkSize (targetChunkMs)', () => {
  const b = { targetChunkMs: 200, minChunkSize: 100, maxChunkSize: 4000 };
  test.each([
    ['on target: unchanged', 1000, 200, 1000],
    ['twice as fast: doubles', 1000, 100, 2000],
    ['ten times as fast: at most doubles', 1000, 20, 2000],
    ['twice as slow: halves', 1000, 400, 500],
    ['ten times as slow: at most halves', 1000, 2000, 500],
    ['never above the maximum', 3000, 10, 4000],
    ['never below the minimum', 150, 10_000, 100],
    ['a 0 ms chunk counts as 1 ms', 1000, 0, 2000],
  ])('%s', (_what, size, ms, expected) => expect(adaptedChunkSize(b, size, ms)).toBe(expected));
});
