import type { ControlLimits, ControlObservation, ControlState } from '../../core/backfill/throttle-control';
import { controlStep, initialControl, laneShare, judgedSince, calmFactor } from '../../core/backfill/throttle-control';
import {
  budgetMs,
  BASELINE_REFRESH,
  refreshPlan,
  isRefreshDue,
  refreshBaseline,
  firstBaseline,
} from '../../core/backfill/throttle-baseline';
import { quantile, withHeldBack, highestWindowP99, baselineP99, excessNeeded, observedRate } from '../../core/backfill/throttle-samples';
import { CONTROL_TUNING } from '../../core/backfill/throttle-tuning';
import { rememberedStart, isWorthRemembering, MEMORY } from '../../core/backfill/throttle-memory';
import { ReplicaLagTracker, parseLsn } from '../../core/backfill/replica-lag';
import { at, only } from '../at';

const limits: ControlLimits = { maxLanes: 4, minChunkSize: 100, maxChunkSize: 10_000, minRowsPerSecond: 100 };
const W = CONTROL_TUNING.windowMs;

function obs(now: number, p99Ms: number | undefined, more: Partial<ControlObservation> = {}): ControlObservation {
  return {
    now,
    budgetP99Ms: 10,
    p50Ms: p99Ms === undefined ? undefined : p99Ms / 2,
    p99Ms,
    samples: 100,
    observedRowsPerSecond: 0,
    ...more,
  };
}

function withDecision(d: Partial<ControlState['decision']>, at = { lastCutAt: 0, lastRaiseAt: 0 }): ControlState {
  const s = initialControl(limits, 1000, true, 0);
  return { ...s, ...at, decision: { ...s.decision, ...d } };
}

describe('the controller', () => {
  test('starts slow under a budget: one lane, 32 chunks a second; without one, everything the spec allows', () => {
    expect(initialControl(limits, 1000, true, 0).decision).toMatchObject({ lanes: 1, rowsPerSecond: 32_000, chunkSize: 1000, hold: false });
    expect(initialControl({ ...limits, maxRowsPerSecond: 700 }, 1000, true, 0).decision.rowsPerSecond).toBe(700);
    expect(initialControl(limits, 1000, false, 0).decision).toMatchObject({ lanes: 4, rowsPerSecond: undefined, action: 'unlimited' });
  });

  test.each([
    // [what, decision before, observation, expected decision fields]
    [
      'far under the budget with the rate binding: rate x2',
      { rowsPerSecond: 2000 },
      obs(10 * W, 3, { observedRowsPerSecond: 1900 }),
      { rowsPerSecond: 4000, action: 'increasing', lanes: 1 },
    ],
    [
      'far under, but too few statements at these settings to raise on (79 of 80)',
      { rowsPerSecond: 2000 },
      obs(10 * W, 3, { samples: 79, observedRowsPerSecond: 1900 }),
      { rowsPerSecond: 2000 },
    ],
    [
      'a little under (70%): rate x1.15, the least raise',
      { rowsPerSecond: 2000 },
      obs(10 * W, 7, { observedRowsPerSecond: 1900 }),
      { rowsPerSecond: 2300, action: 'increasing' },
    ],
    [
      'under, at 60% of the budget: rate raised in proportion to the headroom, x0.8/0.6',
      { rowsPerSecond: 3000 },
      obs(10 * W, 6, { observedRowsPerSecond: 2900 }),
      { rowsPerSecond: 4000, action: 'increasing' },
    ],
    [
      'just over half the budget: at most x1.5',
      { rowsPerSecond: 2000 },
      obs(10 * W, 5.1, { observedRowsPerSecond: 1900 }),
      { rowsPerSecond: 3000, action: 'increasing' },
    ],
    [
      'under, rate not binding: bigger chunks before another lane (the rate kept near what it moves)',
      { rowsPerSecond: 20_000, lanes: 1, chunkSize: 1000 },
      obs(10 * W, 3, { observedRowsPerSecond: 5000 }),
      { chunkSize: 2000, lanes: 1, action: 'increasing', rowsPerSecond: 10_000 },
    ],
    [
      'under, rate not binding, chunks at their largest: one more lane',
      { rowsPerSecond: 20_000, lanes: 1, chunkSize: 10_000 },
      obs(10 * W, 3, { observedRowsPerSecond: 5000 }),
      { chunkSize: 10_000, lanes: 2, rowsPerSecond: 10_000 },
    ],
    [
      'within 80-100% of the budget, within 15 s of a cut: steady',
      { rowsPerSecond: 2000 },
      obs(CONTROL_TUNING.calmMs - 1, 9, { observedRowsPerSecond: 1900 }),
      { rowsPerSecond: 2000, action: 'steady' },
    ],
    [
      'far over the budget (1.5x): a lane less and chunks cut in proportion (at most halved), the rate kept',
      { rowsPerSecond: 8000, lanes: 3, chunkSize: 2000 },
      obs(10 * W, 25, { observedRowsPerSecond: 6000 }),
      { rowsPerSecond: 8000, lanes: 2, chunkSize: 1000, action: 'cutting' },
    ],
    [
      'a little over the budget on several lanes: a lane less, chunk and rate kept',
      { rowsPerSecond: 8000, lanes: 3, chunkSize: 2000 },
      obs(10 * W, 11, { observedRowsPerSecond: 6000 }),
      { rowsPerSecond: 8000, lanes: 2, chunkSize: 2000, action: 'cutting' },
    ],
    [
      'a little over on one lane: chunks cut in proportion (aiming at 90% of the budget), the rate kept',
      { rowsPerSecond: 8000, lanes: 1, chunkSize: 2000 },
      obs(10 * W, 11, { observedRowsPerSecond: 6000 }),
      { rowsPerSecond: 8000, lanes: 1, chunkSize: Math.round((2000 * 9) / 11), action: 'cutting' },
    ],
    [
      'over on one lane at the smallest chunk: the rate cut in proportion, from what it moves',
      { rowsPerSecond: 8000, lanes: 1, chunkSize: 100 },
      obs(10 * W, 11, { observedRowsPerSecond: 6000 }),
      { rowsPerSecond: Math.round((6000 * 9) / 11), lanes: 1, chunkSize: 100, action: 'cutting' },
    ],
    [
      'just over the budget: the mildest cut, x0.85',
      { rowsPerSecond: 8000, lanes: 1, chunkSize: 100 },
      obs(10 * W, 10.2, { observedRowsPerSecond: 8000 }),
      { rowsPerSecond: 6800, lanes: 1, action: 'cutting' },
    ],
    [
      'over at the lowest rate, one lane, the smallest chunk: holds, cause budget',
      { rowsPerSecond: 100, lanes: 1, chunkSize: 100 },
      obs(10 * W, 25),
      { hold: true, holdCause: 'budget', action: 'holding', lanes: 1 },
    ],
    [
      'p99 over the budget in 5 of 200 samples: evidence, cut',
      { rowsPerSecond: 8000, lanes: 2, chunkSize: 2000 },
      obs(10 * W, 25, { samples: 200, overBudget: 5, observedRowsPerSecond: 8000 }),
      { lanes: 1, chunkSize: 1000, action: 'cutting' },
    ],
    ['too few samples: no judgement', { rowsPerSecond: 2000 }, obs(10 * W, 50, { samples: 3 }), { rowsPerSecond: 2000, hold: false }],
  ])('%s', (_what, before, o, expected) => {
    expect(controlStep(withDecision(before), o, limits).decision).toMatchObject(expected);
  });

  test('hysteresis: no second cut within a window of the first (a second, for a severe excess); an increase waits half a window', () => {
    // 12 ms on a 10 ms budget: a mild excess, cut x0.75
    const cut = controlStep(
      withDecision({ rowsPerSecond: 8000, chunkSize: 100 }),
      obs(100_000, 12, { observedRowsPerSecond: 8000 }),
      limits,
    );
    expect(cut.decision.rowsPerSecond).toBe(6000);
    const again = controlStep(cut, obs(100_000 + W - 1, 12, { observedRowsPerSecond: 8000 }), limits);
    expect(again.decision.rowsPerSecond).toBe(6000);
    const later = controlStep(again, obs(100_000 + W, 12, { observedRowsPerSecond: 6000 }), limits);
    expect(later.decision.rowsPerSecond).toBe(4500);
    const tooSoon = controlStep(later, obs(100_000 + W + W / 2 - 1, 2, { observedRowsPerSecond: 4500 }), limits);
    expect(tooSoon.decision.rowsPerSecond).toBe(4500);
    const up = controlStep(tooSoon, obs(100_000 + W + W / 2, 2, { observedRowsPerSecond: 4500 }), limits);
    expect(up.decision.rowsPerSecond).toBe(9000);
    // far under the budget it raises again after half a second; nearer, after half a window
    expect(controlStep(up, obs(100_000 + W + W / 2 + 499, 2, { observedRowsPerSecond: 9000 }), limits).decision.rowsPerSecond).toBe(9000);
    expect(controlStep(up, obs(100_000 + W + W / 2 + 500, 2, { observedRowsPerSecond: 9000 }), limits).decision.rowsPerSecond).toBe(18000);
    expect(controlStep(up, obs(100_000 + W + W / 2 + 500, 7, { observedRowsPerSecond: 9000 }), limits).decision.rowsPerSecond).toBe(9000);
    expect(controlStep(up, obs(100_000 + 2 * W + W / 2, 7, { observedRowsPerSecond: 9000 }), limits).decision.rowsPerSecond).toBe(10350);

    // 25 ms: severe; the probe's window restarts at a cut, so a second's samples after it are enough to cut again
    const severe = controlStep(
      withDecision({ rowsPerSecond: 8000, chunkSize: 100 }),
      obs(100_000, 25, { observedRowsPerSecond: 8000 }),
      limits,
    );
    expect(severe.decision.rowsPerSecond).toBe(4000);
    const S = CONTROL_TUNING.severeSettleMs;
    expect(controlStep(severe, obs(100_000 + S - 1, 25, { observedRowsPerSecond: 8000 }), limits).decision.rowsPerSecond).toBe(4000);
    expect(controlStep(severe, obs(100_000 + S, 25, { observedRowsPerSecond: 4000 }), limits).decision.rowsPerSecond).toBe(2000);
  });

  test('within 80-100% of the budget and calm (no cut for 15 s): probes upwards every 5 s, each raise in a row a larger step', () => {
    const calm = CONTROL_TUNING.calmMs;
    const E = CONTROL_TUNING.probeRaiseEveryMs;
    const s = withDecision({ rowsPerSecond: 2000 });
    const up = controlStep(s, obs(calm, 9, { observedRowsPerSecond: 1900 }), limits);
    expect(up).toMatchObject({ calmRaises: 1, decision: { rowsPerSecond: 2100, action: 'increasing' } });
    const soon = controlStep(up, obs(calm + E - 1, 9, { observedRowsPerSecond: 2000 }), limits);
    expect(soon.decision).toMatchObject({ rowsPerSecond: 2100, action: 'steady' });
    // x1.1 the second time, x1.2 the third
    const again = controlStep(up, obs(calm + E, 9, { observedRowsPerSecond: 2000 }), limits);
    expect(again.decision.rowsPerSecond).toBe(2310);
    const third = controlStep(again, obs(calm + 2 * E, 9, { observedRowsPerSecond: 2300 }), limits);
    expect(third.decision.rowsPerSecond).toBe(2772);
    // a cut starts again from x1.05
    const cut = controlStep(third, obs(calm + 3 * E, 25, { observedRowsPerSecond: 2700 }), limits);
    expect(cut).toMatchObject({ calmRaises: 0, decision: { action: 'cutting' } });
  });

  test.each([
    [0, 1.05],
    [1, 1.1],
    [2, 1.2],
    [3, 1.4],
    [4, 1.5],
    [50, 1.5],
  ])('the calm raise after %d calm raises in a row: x%d', (k, factor) => expect(calmFactor(k)).toBeCloseTo(factor, 9));

  test('calm at a rate the backfill does not reach: the chunk goes up instead (a run at its floor climbs)', () => {
    const calm = CONTROL_TUNING.calmMs;
    const s = withDecision({ rowsPerSecond: 2000, chunkSize: 1000 });
    expect(controlStep(s, obs(calm, 9, { observedRowsPerSecond: 500 }), limits).decision).toMatchObject({
      rowsPerSecond: 1050,
      chunkSize: 1050,
      action: 'increasing',
    });
    // one lane at the smallest chunk and the lowest rate, the rate reached: the rate goes up
    const floor = withDecision({ rowsPerSecond: 100, chunkSize: 100 });
    expect(controlStep(floor, obs(calm, 9, { observedRowsPerSecond: 115 }), limits).decision).toMatchObject({
      rowsPerSecond: 105,
      action: 'increasing',
    });
  });

  test('over the budget in too few samples to tell from chance (4 of 200): watching, nothing cut; after a calm spell, a raise', () => {
    const o = (now: number) => obs(now, 25, { samples: 200, overBudget: 4, observedRowsPerSecond: 8000 });
    const s = withDecision({ rowsPerSecond: 8000, lanes: 2, chunkSize: 2000 }, { lastCutAt: 40_000, lastRaiseAt: 0 });
    const watching = controlStep(s, o(50_000), limits).decision;
    expect(watching).toMatchObject({ rowsPerSecond: 8000, lanes: 2, chunkSize: 2000, action: 'steady' });
    expect(watching.reason).toMatch(/too few to tell from chance \(5 would be\): watching/);
    const calm = controlStep(s, o(40_000 + CONTROL_TUNING.calmMs), limits).decision;
    expect(calm).toMatchObject({ rowsPerSecond: 8400, lanes: 2, chunkSize: 2000, action: 'increasing' });
    expect(calm.reason).toMatch(/in 4 of 200 samples, too few to tell from chance, and calm: rate to 8400/);
  });

  test("a budget inside the load's own variation: a cut only for an excess that lasts half a window, and the reason says why", () => {
    const noisy = (now: number, p99: number) => obs(now, p99, { noiseP99Ms: 12, observedRowsPerSecond: 4000 });
    let s = withDecision({ rowsPerSecond: 4000, chunkSize: 100 });
    s = controlStep(s, noisy(10 * W, 11), limits);
    expect(s.decision).toMatchObject({ rowsPerSecond: 4000, action: 'steady' });
    expect(s.decision.reason).toMatch(
      new RegExp(`inside the load's own variation: without the backfill a ${W / 1000}-s window reached p99 12 ms`),
    );
    expect(s.overSince).toBe(10 * W);
    // back under: the excess did not last
    const under = controlStep(s, noisy(10 * W + 500, 9), limits);
    expect(under.overSince).toBeUndefined();
    // still over half a window later: cut
    const cut = controlStep(s, noisy(10 * W + W / 2, 11), limits);
    expect(cut.decision).toMatchObject({ action: 'cutting', rowsPerSecond: Math.round((4000 * 9) / 11) });
    expect(cut.overSince).toBeUndefined();
    // a budget above the noise: the first excess cuts at once
    expect(
      controlStep(withDecision({ rowsPerSecond: 4000 }), obs(10 * W, 11, { noiseP99Ms: 8, observedRowsPerSecond: 4000 }), limits).decision
        .action,
    ).toBe('cutting');
  });

  test('a budget hold ends only under 80% of the budget, at the lowest rate', () => {
    const held = withDecision({ hold: true, holdCause: 'budget', rowsPerSecond: 100, lanes: 1 });
    expect(controlStep(held, obs(10 * W, 9), limits).decision.hold).toBe(true);
    const released = controlStep(held, obs(10 * W, 7), limits).decision;
    expect(released).toMatchObject({ hold: false, rowsPerSecond: 100, lanes: 1, chunkSize: 100 });
  });

  test('a load step: under, then a doubled load pushes p99 far over; the controller cuts chunks every second, then the rate', () => {
    let s = withDecision({ rowsPerSecond: 2000 });
    let t = 0;
    for (let i = 0; i < 10; i++) {
      t += 500;
      s = controlStep(s, obs(t, 3, { observedRowsPerSecond: s.decision.rowsPerSecond! }), limits);
    }
    const peak = s.decision.rowsPerSecond!;
    expect(peak).toBeGreaterThan(2000);
    expect(s.decision.chunkSize).toBe(1000);
    const seen: { rate: number; chunk: number }[] = [];
    for (let i = 0; i < 5; i++) {
      t += CONTROL_TUNING.severeSettleMs;
      s = controlStep(s, obs(t, 30, { observedRowsPerSecond: peak }), limits);
      expect(s.decision.action).toBe('cutting');
      seen.push({ rate: s.decision.rowsPerSecond!, chunk: s.decision.chunkSize });
    }
    // halved chunks down to the smallest, the rate untouched until then; then the rate halves
    expect(seen).toEqual([
      { rate: peak, chunk: 500 },
      { rate: peak, chunk: 250 },
      { rate: peak, chunk: 125 },
      { rate: peak, chunk: 100 },
      { rate: Math.round(peak / 2), chunk: 100 },
    ]);
  });

  test('chunks are never more than a second of the rate; climbing back, the rate goes up while it binds, then chunks, then lanes', () => {
    // the benchmark's crawl: 7,500-row chunks at 1,000 rows/s, one chunk every 7.5 s
    let s = withDecision({ rowsPerSecond: 1000, lanes: 2, chunkSize: 10_000 });
    s = controlStep(s, obs(10 * W, 30, { observedRowsPerSecond: 1000 }), limits);
    expect(s.decision).toMatchObject({ action: 'cutting', rowsPerSecond: 1000, chunkSize: 1000, lanes: 1 });
    // under the budget again: one lane moves at most 20 chunks a second, so the rate binds until chunks are what limit it
    let t = 10 * W;
    const seen: { rate: number; chunk: number; lanes: number }[] = [];
    for (let i = 0; i < 30; i++) {
      t += W;
      const d = s.decision;
      const moves = Math.min(d.rowsPerSecond!, d.chunkSize * 20 * d.lanes);
      s = controlStep(s, obs(t, 3, { observedRowsPerSecond: moves }), limits);
      seen.push({ rate: s.decision.rowsPerSecond!, chunk: s.decision.chunkSize, lanes: s.decision.lanes });
    }
    for (const x of seen) expect(x.chunk).toBeLessThanOrEqual(Math.max(x.rate * CONTROL_TUNING.maxChunkSeconds, limits.minChunkSize));
    // chunks reached their largest before a second lane came
    const firstTwoLanes = seen.findIndex((x) => x.lanes > 1);
    expect(firstTwoLanes).toBeGreaterThan(0);
    expect(at(seen, firstTwoLanes - 1).chunk).toBe(limits.maxChunkSize);
    expect(at(seen, -1).lanes).toBe(limits.maxLanes);
  });

  test('at a low rate the observed rate is lumpy: the rate is raised, not lanes or chunks, and no chunk grows past a second of the rate', () => {
    // the scale-50 run: 500-661 rows/s on 3 lanes while chunks grew to 10,000 rows, one chunk per 15 s, for minutes
    const lumpy = controlStep(
      withDecision({ rowsPerSecond: 500, lanes: 2, chunkSize: 500 }),
      obs(10 * W, 7, { observedRowsPerSecond: 200 }),
      limits,
    );
    expect(lumpy.decision).toMatchObject({ action: 'increasing', rowsPerSecond: 575, lanes: 2 });
    expect(lumpy.decision.chunkSize).toBeLessThanOrEqual(575);
    const grown = controlStep(
      withDecision({ rowsPerSecond: 575, lanes: 3, chunkSize: 3517 }),
      obs(10 * W, 7, { observedRowsPerSecond: 0 }),
      limits,
    );
    expect(grown.decision).toMatchObject({ rowsPerSecond: 661, lanes: 3, chunkSize: 661 });
    // a fast rate the lanes do not reach is judged as before: all lanes in use, so bigger chunks, and the rate kept near what they move
    const fast = controlStep(
      withDecision({ rowsPerSecond: 40_000, lanes: 4, chunkSize: 3000 }),
      obs(10 * W, 3, { observedRowsPerSecond: 10_000 }),
      limits,
    );
    expect(fast.decision).toMatchObject({ rowsPerSecond: 20_000, lanes: 4, chunkSize: 6000 });
  });

  describe('replica lag', () => {
    const lagObs = (lagMs: number | null, state = 'streaming', more: Partial<ControlObservation> = {}) =>
      obs(10 * W, 3, {
        budgetP99Ms: undefined,
        maxReplicaLagMs: 2000,
        replicas: [{ name: 'r1@local', lagMs, state }],
        observedRowsPerSecond: 5000,
        ...more,
      });
    test.each([
      ['under half the limit: unlimited', 500, 'streaming', undefined, { hold: false, action: 'unlimited' }],
      [
        'over half the limit: slows (rate halved from what it moves)',
        1500,
        'streaming',
        undefined,
        { hold: false, action: 'slowing', rowsPerSecond: 2500 },
      ],
      ['over the limit: holds', 2500, 'streaming', undefined, { hold: true, holdCause: 'replica_lag' }],
      ['a replica gone, onReplicaMissing hold (default): holds', null, 'missing', undefined, { hold: true, holdCause: 'replica_missing' }],
      ['a replica gone, onReplicaMissing ignore: goes on', null, 'missing', 'ignore' as const, { hold: false }],
    ])('%s', (_what, lag, state, policy, expected) => {
      const s = initialControl(limits, 1000, false, 0);
      expect(controlStep(s, lagObs(lag, state, { onReplicaMissing: policy }), limits).decision).toMatchObject(expected);
    });
    test('a lag hold ends as lag falls; the replica rules apply with a budget too', () => {
      const held = controlStep(withDecision({ rowsPerSecond: 3000 }), lagObs(5000, 'streaming', { budgetP99Ms: 10 }), limits);
      expect(held.decision).toMatchObject({ hold: true, holdCause: 'replica_lag' });
      expect(held.decision.reason).toMatch(/replica lag 5000 ms over the limit of 2000 ms/);
      const released = controlStep(held, lagObs(0, 'streaming', { budgetP99Ms: 10 }), limits);
      expect(released.decision).toMatchObject({ hold: false, rowsPerSecond: 3000 });
    });
  });

  test("the load's own variation: the highest p99 of any 2-s window, windows sliding by half a second", () => {
    // 4 s at one sample per 20 ms: 1 ms, with a burst of 5 ms statements from 2.5 s to 2.6 s
    const samples = Array.from({ length: 200 }, (_, i) => ({ at: i * 20, ms: i >= 125 && i < 130 ? 5 : 1 }));
    expect(highestWindowP99(samples, 2000)).toBe(5);
    expect(
      quantile(
        samples.map((s) => s.ms),
        0.99,
      ),
    ).toBe(5);
    // a single slow statement is the p99 of no 100-sample window
    const one = samples.map((s, i) => ({ ...s, ms: i === 150 ? 9 : 1 }));
    expect(highestWindowP99(one, 2000)).toBe(1);
    expect(highestWindowP99([], 2000)).toBeUndefined();
    expect(highestWindowP99([{ at: 5, ms: 2 }], 2000)).toBe(2);
  });

  test('the baseline is the median window p99: one stall of the load while it is measured does not set the budget', () => {
    // 30 s at one sample per 25 ms, 2 ms, with one 150 ms stall of the load (seven statements held) at 10 s
    const samples = Array.from({ length: 1200 }, (_, i) => ({ at: i * 25, ms: i >= 400 && i < 407 ? 150 - (i - 400) * 20 : 2 }));
    expect(
      quantile(
        samples.map((s) => s.ms),
        0.99,
      ),
    ).toBe(2);
    const stalled = samples.map((s, i) => ({ ...s, ms: i >= 400 && i < 420 ? 150 : s.ms }));
    // the p99 of all the samples is the stall's; the median of the windows' is the load's
    expect(
      quantile(
        stalled.map((s) => s.ms),
        0.99,
      ),
    ).toBe(150);
    expect(baselineP99(stalled, W)).toBe(2);
    expect(highestWindowP99(stalled, W)).toBe(150);
    expect(baselineP99([], W)).toBeUndefined();
  });

  test('evidence of an excess: the fewest samples over the budget a p99 at the budget gives by chance less than 10% of the time', () => {
    expect([10, 40, 100, 200, 500].map((n) => excessNeeded(n))).toEqual([1, 2, 3, 5, 9]);
    expect(excessNeeded(0)).toBe(1);
  });

  test('the observed rate: since the last change, over at least a second and at most a window', () => {
    const seen = Array.from({ length: 21 }, (_, i) => ({ at: i * 500, rows: i < 16 ? i * 500 : 7500 + (i - 15) * 5000 }));
    // from 7.5 s the backfill moves 10,000 rows/s, before it 1,000 rows/s
    expect(observedRate(seen, 10_000, 7_500)).toBe(10_000);
    // a change half a second ago: still a second of readings
    expect(observedRate(seen, 10_000, 9_500)).toBe(10_000);
    // no change for long: a window's average
    expect(observedRate(seen, 10_000, 0)).toBe((32_500 - 5_000) / 5);
    expect(observedRate([], 10_000, 0)).toBe(0);
    expect(observedRate([{ at: 5, rows: 9 }], 10_000, 0)).toBe(0);
  });

  test('budget from a ratio needs the baseline', () => {
    expect(budgetMs({ p99Ms: 5 }, undefined)).toBe(5);
    expect(budgetMs({ p99Ratio: 2 }, undefined)).toBeUndefined();
    expect(budgetMs({ p99Ratio: 2 }, 1.5)).toBe(3);
    expect(budgetMs(undefined, 3)).toBeUndefined();
  });

  test.each([
    [[], 0.99, undefined],
    [[5], 0.99, 5],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5, 5],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99, 10],
    [Array.from({ length: 200 }, (_, i) => i + 1), 0.99, 198],
  ])('quantile of %j at %d: %s', (xs, q, expected) => expect(quantile(xs, q)).toBe(expected));
});

describe("a lease's share of a decision", () => {
  const d = { ...initialControl(limits, 1000, true, 0).decision, rowsPerSecond: 3000, lanes: 3 };
  test.each([
    ['no decision yet: hold', undefined, 0, 0, { hold: true, stop: false }],
    ['a stale decision: hold', d, 0, 20_000, { hold: true }],
    ['lane 1 of 3: a third of the rate', d, 1, 0, { hold: false, stop: false, rowsPerSecond: 1000, chunkSize: 1000 }],
    ['lane 3 of 3 wanted: stop', d, 3, 0, { stop: true }],
    ['lane 0 never stops', { ...d, lanes: 0 }, 0, 0, { stop: false }],
    ['a hold: hold with its reason', { ...d, hold: true, reason: 'lag' }, 0, 0, { hold: true, reason: 'lag' }],
  ])('%s', (_what, decision, laneNo, age, expected) => expect(laneShare(decision, laneNo, age, 10_000)).toMatchObject(expected));
});

describe('replica lag from the primary', () => {
  test.each([
    ['0/0', 0],
    ['0/16B3748', 0x16b3748],
    ['16/B374D848', 0x16 * 2 ** 32 + 0xb374d848],
  ])('LSN %s', (lsn, n) => expect(parseLsn(lsn)).toBe(n));

  test('replay paused: lag grows from when the primary first moved past the replayed position, though replay_lag stays stale', () => {
    const tr = new ReplicaLagTracker();
    const r = (replayLsn: string, replayLagMs: number | null) => [{ name: 'r1@local', state: 'streaming', replayLsn, replayLagMs }];
    expect(only(tr.observe(1000, '0/100', r('0/100', null))).lagMs).toBe(0); // idle, caught up: replay_lag NULL
    expect(only(tr.observe(2000, '0/200', r('0/100', 15))).lagMs).toBe(15); // first seen past at 2000: replay_lag is all there is
    expect(only(tr.observe(5000, '0/300', r('0/100', 15))).lagMs).toBe(3000);
    expect(only(tr.observe(9000, '0/300', r('0/100', 15))).lagMs).toBe(7000); // idle primary, still paused: lag still grows
    expect(only(tr.observe(9500, '0/300', r('0/300', 8000))).lagMs).toBe(0); // resumed and caught up: stale replay_lag ignored
    expect(only(tr.observe(9600, '0/400', r('0/300', 9000))).lagMs).toBe(9000); // replay_lag larger than the estimate counts
  });

  test('a replica that disappears is reported missing (and remembered from an earlier probe)', () => {
    const tr = new ReplicaLagTracker(['r2@10.0.0.2']);
    const out = tr.observe(1000, '0/100', [{ name: 'r1@local', state: 'streaming', replayLsn: '0/100', replayLagMs: null }]);
    expect(out).toEqual([
      { name: 'r1@local', state: 'streaming', lagMs: 0 },
      { name: 'r2@10.0.0.2', state: 'missing', lagMs: null },
    ]);
    expect(tr.observe(2000, '0/100', [])).toEqual([
      { name: 'r1@local', state: 'missing', lagMs: null },
      { name: 'r2@10.0.0.2', state: 'missing', lagMs: null },
    ]);
    expect(tr.replicasSeen()).toEqual(['r1@local', 'r2@10.0.0.2']);
  });
});

describe('withHeldBack: a slow probe statement stands for the ones it kept from starting', () => {
  test.each([
    // [latency ms, pace ms, samples recorded]
    [3, 25, [3]],
    [25, 25, [25]],
    [60, 25, [60, 35]],
    [100, 20, [100, 80, 60, 40, 20]],
    [10, 0, [10]],
  ])('%d ms at one statement per %d ms records %j', (ms, every, expected) => {
    expect(withHeldBack(ms, every)).toEqual(expected);
  });

  test('a statement cut off at the timeout adds at most the cap', () => {
    expect(withHeldBack(2000, 5, 10)).toHaveLength(11);
  });

  test("a stall moves the window's p99 as it moves an open-loop client's: one 200 ms statement among 199 at 2 ms", () => {
    const timed = [...Array.from({ length: 199 }, () => 2), 200];
    expect(quantile(timed, 0.99)).toBe(2);
    expect(
      quantile(
        timed.flatMap((v) => withHeldBack(v, 20)),
        0.99,
      ),
    ).toBeGreaterThanOrEqual(100);
  });
});

describe('the baseline that moves: off-windows', () => {
  test.each([
    ['an absolute budget has no baseline to refresh', { p99Ms: 5 }, undefined],
    ['off', { p99Ratio: 2, refresh: false as const }, undefined],
    ['p99Ratio: on by default, 6 s every 90 s', { p99Ratio: 2 }, { everyMs: 90_000, holdMs: 6_000 }],
    ['its own period, the default hold', { p99Ratio: 2, refresh: { everyMs: 60_000 } }, { everyMs: 60_000, holdMs: 6_000 }],
    ['a short period: the hold at most half of it', { p99Ratio: 2, refresh: { everyMs: 10_000 } }, { everyMs: 10_000, holdMs: 5_000 }],
    ['both set', { p99Ratio: 2, refresh: { everyMs: 120_000, holdMs: 8_000 } }, { everyMs: 120_000, holdMs: 8_000 }],
    ['no budget', undefined, undefined],
  ])('%s', (_what, latency, expected) => expect(refreshPlan(latency)).toEqual(expected));

  test('the default costs 6.7% of the time the backfill would run (6 s of every 90 s)', () => {
    expect(BASELINE_REFRESH.holdMs / BASELINE_REFRESH.everyMs).toBeCloseTo(0.0667, 3);
  });

  const b0 = firstBaseline(2, 3, 1_000);
  test.each([
    ['off: never', undefined, b0, 1_000_000, false],
    ['no baseline yet: not due (the first measurement comes first)', { everyMs: 90_000 }, undefined, 1_000_000, false],
    ['before the period is over: not due', { everyMs: 90_000 }, b0, 90_999, false],
    ['once it is over: due', { everyMs: 90_000 }, b0, 91_000, true],
    ['counted from the last off-window', { everyMs: 90_000 }, { ...b0, lastWindowAt: 100_000 }, 150_000, false],
  ])('%s', (_what, plan, b, now, expected) => expect(isRefreshDue(plan, b, now)).toBe(expected));

  /** An off-window from `begun`: its first second (chunks in flight) at 50 ms, then `n` samples of `ms` over the next 5 s. */
  const window = (begun: number, ms: number, n = 200) => [
    ...Array.from({ length: 20 }, (_, i) => ({ at: begun + i * 50, ms: 50 })),
    ...Array.from({ length: n }, (_, i) => ({ at: begun + BASELINE_REFRESH.settleMs + (i * 5000) / n, ms })),
  ];

  test('an off-window counts, leaves its first second out, and the baseline is the median of the last three windows', () => {
    // the load doubles: the first window alone does not move the baseline (the lower of two), the second does
    const b1 = refreshBaseline(b0, window(90_000, 4), 90_000, 96_000);
    expect(b1).toMatchObject({ baselineP99Ms: 2, windows: 1, lastWindowAt: 90_000, at: 96_000, recent: [2, 4] });
    const b2 = refreshBaseline(b1, window(180_000, 4), 180_000, 186_000);
    expect(b2).toMatchObject({ baselineP99Ms: 4, windows: 2, recent: [2, 4, 4] });
    // the load's own variation moves with the baseline: 1.5x it before, 1.5x it now
    expect(b2.noiseP99Ms).toBeCloseTo(6, 9);
    // the load halves again: followed within two windows
    const b3 = refreshBaseline(b2, window(270_000, 2), 270_000, 276_000);
    expect(b3.baselineP99Ms).toBe(4);
    const b4 = refreshBaseline(b3, window(360_000, 2), 360_000, 366_000);
    expect(b4).toMatchObject({ baselineP99Ms: 2, windows: 4, recent: [4, 2, 2] });
  });

  test('one stall in one off-window does not loosen the budget', () => {
    const stalled = refreshBaseline(refreshBaseline(b0, window(90_000, 2), 90_000, 96_000), window(180_000, 80), 180_000, 186_000);
    expect(stalled.baselineP99Ms).toBe(2);
  });

  test('a window with too few samples is counted and leaves the baseline as it was', () => {
    const b = refreshBaseline(b0, window(90_000, 9, 5), 90_000, 96_000);
    expect(b).toMatchObject({ baselineP99Ms: 2, windows: 1, lastWindowAt: 90_000, at: 1_000, recent: [2] });
  });

  test('the window judged after an off-window starts when the lanes resume', () => {
    const s = withDecision({}, { lastCutAt: 1_000, lastRaiseAt: 2_000 });
    expect(judgedSince(s)).toBe(2_000);
    expect(judgedSince({ ...s, resumedAt: 9_000 })).toBe(9_000);
  });
});

describe('settings remembered per table', () => {
  const kept = { rowsPerSecond: 30_000, lanes: 3, chunkSize: 5_000, budgetP99Ms: 10, p99Ms: 7, keptAt: 1_000 };
  test.each([
    ['none remembered: the slow start', undefined, 10, undefined],
    ['too old: the slow start', kept, 10, undefined, 1_000 + MEMORY.maxAgeMs + 1],
    ['kept under a looser budget: says nothing of a tighter one', kept, 8, undefined],
    ['a step below: a lane less, the rate x0.7, the chunk as kept', kept, 10, { lanes: 2, rowsPerSecond: 21_000, chunkSize: 5_000 }],
    ['under a looser budget too', kept, 20, { lanes: 2, rowsPerSecond: 21_000 }],
    ['one lane stays one lane', { ...kept, lanes: 1 }, 10, { lanes: 1 }],
    [
      "within this run's limits: at most its lanes and chunk",
      { ...kept, lanes: 9, chunkSize: 50_000 },
      10,
      { lanes: 4, chunkSize: 10_000 },
    ],
    ['no rate was needed: none', { ...kept, rowsPerSecond: undefined }, 10, { rowsPerSecond: undefined, lanes: 2 }],
    ['a slow rate: the chunk at most a second of it', { ...kept, rowsPerSecond: 1_000 }, 10, { rowsPerSecond: 700, chunkSize: 700 }],
  ])('%s', (_what, m, budget, expected, now = 60_000) => {
    const s = rememberedStart(limits, 1000, m, budget, now);
    if (expected === undefined) return expect(s).toBeUndefined();
    expect(s!.decision).toMatchObject({ ...expected, hold: false });
    expect(s!.decision.reason).toMatch(/^starting a step below the settings that kept a 10 ms budget on this table \(/);
  });

  test('the remembered start climbs from there, not from eight chunks a second', () => {
    const s = rememberedStart(limits, 1000, kept, 10, 60_000)!;
    const up = controlStep(s, obs(61_000, 3, { samples: 100, observedRowsPerSecond: 20_000 }), limits);
    expect(up.decision).toMatchObject({ rowsPerSecond: 42_000, lanes: 2, action: 'increasing' });
  });

  const at = (d: Partial<ControlState['decision']>, times = { lastCutAt: 0, lastRaiseAt: 0 }) =>
    withDecision({ budgetP99Ms: 10, p99Ms: 7, action: 'steady', ...d }, times);
  test.each([
    ['kept, judged, no cut for long: yes', at({}), 100_000, true],
    ['held: no', at({ hold: true, action: 'holding' }), 100_000, false],
    ['over the budget: no', at({ p99Ms: 12 }), 100_000, false],
    ['cutting: no', at({ action: 'cutting' }), 100_000, false],
    ['a cut less than a judging window (5 s) ago: no', at({}, { lastCutAt: 96_000, lastRaiseAt: 0 }), 100_000, false],
    ['a cut a judging window ago, kept since: yes', at({}, { lastCutAt: 95_000, lastRaiseAt: 0 }), 100_000, true],
    ['raised a moment ago (not yet judged): no', at({ action: 'increasing' }, { lastCutAt: 0, lastRaiseAt: 99_000 }), 100_000, false],
    ['raised half a window ago and kept: yes', at({ action: 'increasing' }, { lastCutAt: 0, lastRaiseAt: 97_500 }), 100_000, true],
    ['no budget: no', at({ budgetP99Ms: undefined }), 100_000, false],
  ])('worth remembering? %s', (_what, s, now, expected) => expect(isWorthRemembering(s, now)).toBe(expected));
});
