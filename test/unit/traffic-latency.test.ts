import type { StatementCounters } from '../../core/backfill/traffic-latency';
import { statementsP99, normalCdf, resolveBudget, NOISE_MARGIN, MIN_TRAFFIC_CALLS } from '../../core/backfill/traffic-latency';

/** A statement's counters after `calls` executions of these times (ms). */
function counters(id: string, times: number[], from?: StatementCounters): StatementCounters {
  return {
    id,
    calls: (from?.calls ?? 0) + times.length,
    totalMs: (from?.totalMs ?? 0) + times.reduce((a, b) => a + b, 0),
    sumSquaresMs: (from?.sumSquaresMs ?? 0) + times.reduce((a, b) => a + b * b, 0),
  };
}

describe("the traffic's p99 from pg_stat_statements", () => {
  test('the standard normal CDF', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 6);
    expect(normalCdf(2.326)).toBeCloseTo(0.99, 3);
    expect(normalCdf(-1.96)).toBeCloseTo(0.025, 3);
  });

  test('one statement of constant latency: its latency', () => {
    expect(statementsP99([], [counters('a', Array(100).fill(3))])).toBeCloseTo(3, 6);
  });

  test('only what ran between the two readings counts: a statement slow before and fast since reads fast', () => {
    const before = counters('a', Array(1000).fill(50));
    const after = counters('a', Array(200).fill(2), before);
    expect(statementsP99([before], [after])).toBeCloseTo(2, 6);
  });

  test('a lognormal sample: the estimate lands near its true p99', () => {
    // exp(N(ln 2, 0.5)) by inverse CDF on an even grid: p99 = 2 x exp(0.5 x 2.326) = 6.40
    const times: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const u = (i + 0.5) / 2000;
      // inverse normal by bisection on normalCdf
      let lo = -8;
      let hi = 8;
      for (let k = 0; k < 60; k++) {
        const m = (lo + hi) / 2;
        if (normalCdf(m) < u) lo = m;
        else hi = m;
      }
      times.push(2 * Math.exp(0.5 * lo));
    }
    const p99 = statementsP99([], [counters('a', times)])!;
    expect(p99).toBeGreaterThan(6.0);
    expect(p99).toBeLessThan(6.8);
  });

  test('a mixture is weighted by calls: 2% of calls at 100 ms puts the p99 among them, 0.1% does not', () => {
    const fast = Array(990).fill(1);
    expect(statementsP99([], [counters('fast', fast), counters('slow', Array(20).fill(100))])).toBeGreaterThan(50);
    expect(statementsP99([], [counters('fast', fast), counters('slow', Array(1).fill(100))])).toBeLessThan(2);
  });

  test('too few statements, none moved, or counters that started over', () => {
    expect(statementsP99([], [counters('a', Array(MIN_TRAFFIC_CALLS - 1).fill(3))])).toBeUndefined();
    const a = counters('a', Array(100).fill(3));
    expect(statementsP99([a], [a])).toBeUndefined();
    // evicted and counted again: its counters now are all since then
    expect(statementsP99([counters('a', Array(500).fill(9))], [a])).toBeCloseTo(3, 6);
  });
});

describe('the budget resolved', () => {
  test.each([
    ['no budget', undefined, {}, {}],
    ['absolute: as given, whatever the baselines', { p99Ms: 5 }, { probeBaselineMs: 1, trafficBaselineMs: 9 }, { budgetP99Ms: 5 }],
    ['a ratio before its baseline: none yet', { p99Ratio: 2 }, {}, {}],
    [
      'a ratio of the probe when the traffic is unknown',
      { p99Ratio: 2 },
      { probeBaselineMs: 1.6 },
      { budgetP99Ms: 3.2, reference: 'probe' },
    ],
    // the run: probe 1.6 ms, traffic 4.9 ms, 2x: the traffic may wait 4.9 ms more, and so may the probe
    [
      "the issue's run: the traffic's allowance on the probe's baseline",
      { p99Ratio: 2 },
      { probeBaselineMs: 1.6, trafficBaselineMs: 4.9, noiseP99Ms: 2.07 },
      { budgetP99Ms: 6.5, reference: 'traffic' },
    ],
    [
      'a traffic faster than the probe: a tighter budget',
      { p99Ratio: 3 },
      { probeBaselineMs: 2, trafficBaselineMs: 0.5 },
      { budgetP99Ms: 3, reference: 'traffic' },
    ],
  ])('%s', (_what, latency, m, expected) => {
    const r = resolveBudget(latency, m);
    expect(Object.keys(r).sort()).toEqual(Object.keys(expected).sort());
    if ('budgetP99Ms' in expected) expect(r.budgetP99Ms).toBeCloseTo(expected.budgetP99Ms, 9);
    expect(r.reference).toBe((expected as { reference?: string }).reference);
  });

  test("a budget inside the probe's own swing is raised out of it, and says what was asked", () => {
    // 1.5x a 1.6 ms probe baseline is 2.4 ms; the probe alone reached 3.2 ms: raised to 1.6 + 1.2 x 1.6
    const r = resolveBudget({ p99Ratio: 1.5 }, { probeBaselineMs: 1.6, noiseP99Ms: 3.2 });
    expect(r.askedP99Ms).toBeCloseTo(2.4, 9);
    expect(r.budgetP99Ms).toBeCloseTo(1.6 + NOISE_MARGIN * 1.6, 9);
    expect(r.reference).toBe('probe');
    // clear of it: as asked
    expect(resolveBudget({ p99Ratio: 3 }, { probeBaselineMs: 1.6, noiseP99Ms: 3.2 })).toEqual({ budgetP99Ms: 1.6 * 3, reference: 'probe' });
  });
});
