import {
  pairedVerdict,
  formatPairedVerdict,
  offWindowsOf,
  runWindows,
  withOtherLoad,
  keptByPairs,
  pairedFrontier,
  budgetVerdict,
  shareWithin,
} from '../../bench/paired-windows';
import type { Window, PairedWindow } from '../../bench/paired-windows';
import type { Transaction } from '../../bench/pgbench';
import { at } from '../at';

/** 100 transactions spread over [fromMs, fromMs + 10 s): 99 at `ms`, one at `slowMs`. */
function load(fromMs: number, ms: number, slowMs = ms): Transaction[] {
  return Array.from({ length: 100 }, (_, i) => {
    const latencyMs = i === 50 ? slowMs : ms;
    const startMs = fromMs + i * 100;
    return { startMs, endMs: startMs + latencyMs, latencyMs, failed: false };
  });
}

const S = 10_000;
const on = (k: number, otherCores?: number): Window => ({ fromMs: k * S, toMs: (k + 1) * S, isOn: true, otherCores });
const off = (k: number): Window => ({ fromMs: k * S, toMs: (k + 1) * S, isOn: false });
const opts = { otherCoresThreshold: 0.1, wallMs: 50_000, frontierWallMs: 40_000 };

test('a slow drift of the host cancels out: each on-window is held against the off-windows beside it, not one baseline', () => {
  // the load alone drifts 2 -> 8 ms; the backfill adds 50% on top of whatever it is
  const txns = [...load(0, 2), ...load(S, 3), ...load(2 * S, 4), ...load(3 * S, 6), ...load(4 * S, 8)];
  const windows = [off(0), on(1), off(2), on(3), off(4)];
  const v = pairedVerdict(txns, windows, 2, opts);
  expect(v.windows.map((w) => [w.onP99, w.neighboursP99])).toEqual([
    [3, 4],
    [6, 8],
  ]);
  // the neighbours' p99 is that of their transactions together: the higher side's 99th percentile
  expect(v.withinShare).toBe(1);
  // against the first baseline alone (2 ms), the second on-window would read 3x
  expect(at(v.windows, 1).onP99 / 2).toBe(3);
  expect(v.wallRatio).toBeCloseTo(1.25, 9);
});

test('the share within budget, and the pooled on/off ratio', () => {
  const txns = [
    ...load(0, 2),
    ...load(S, 3),
    ...load(2 * S, 2),
    ...load(3 * S, 9),
    ...load(4 * S, 2),
    ...load(5 * S, 3),
    ...load(6 * S, 2),
  ];
  const windows = [off(0), on(1), off(2), on(3), off(4), on(5), off(6)];
  const v = pairedVerdict(txns, windows, 2, opts);
  expect(v.windows.map((w) => w.isWithin)).toEqual([true, false, true]);
  expect(v.withinShare).toBeCloseTo(2 / 3, 9);
  // 300 on-transactions: 200 at 3 ms, 100 at 9 ms, so the p99 is 9; every off one at 2 ms
  expect(v.pooledRatio).toBe(4.5);
});

test('windows with other load over the threshold are counted and shown, and stay in the verdict; the quiet ones also apart', () => {
  const txns = [...load(0, 2), ...load(S, 3), ...load(2 * S, 2), ...load(3 * S, 9), ...load(4 * S, 2)];
  const windows = [off(0), on(1, 0.05), off(2), on(3, 0.4), off(4)];
  const v = pairedVerdict(txns, windows, 2, opts);
  expect(v.noisyWindows).toBe(1);
  expect(v.windows).toHaveLength(2);
  expect(v.withinShare).toBe(0.5);
  expect(v.quietWithinShare).toBe(1);
  const line = formatPairedVerdict(v);
  expect(line).toBe(
    "2x: 50% of 2 on-windows within 2x their neighbours' p99 (quiet ones: 100%), pooled on/off p99 4.50x, wall 1.25x the fixed frontier; 1 window with other load over the threshold (0.40 cores, 4.50x)",
  );
});

test('an on-window with only one neighbour is held against that one; one with none, or with no transactions, is not judged', () => {
  const txns = [...load(0, 2), ...load(S, 3), ...load(2 * S, 3)];
  const v = pairedVerdict(txns, [off(0), on(1), on(2), on(3)], 2, { ...opts, frontierWallMs: undefined });
  // on(1) and on(2) both have off(0) before them; on(3) has no transactions
  expect(v.windows.map((w) => w.neighboursP99)).toEqual([2, 2]);
  expect(Number.isNaN(v.wallRatio)).toBe(true);
  const none = pairedVerdict(txns, [on(0), on(1)], 2, opts);
  expect(none.windows).toEqual([]);
  expect(Number.isNaN(none.withinShare)).toBe(true);
  expect(formatPairedVerdict(none)).toMatch(/^2x: - of 0 on-windows/);
});

test('a failed transaction is left out of the p99, as in the rest of the bench', () => {
  const txns = [...load(0, 2), ...load(S, 3)];
  txns.push({ startMs: S + 5, endMs: S + 5005, latencyMs: 5000, failed: true });
  expect(pairedVerdict(txns, [off(0), on(1)], 2, opts).windows.at(0)?.onP99).toBe(3);
});

describe("the run's windows for the bench's budget rounds", () => {
  test("the controller's off-windows from progress: runs of readings held for the baseline, less the settle, too short ones left out", () => {
    const held = (atMs: number, isOffWindow: boolean) => ({ atMs, isOffWindow });
    const samples = [
      held(0, false),
      held(500, true),
      held(1000, true),
      held(6500, true),
      held(7000, false),
      held(8000, true), // 1 s held: under settle + minimum
      held(8500, false),
      held(20_000, true),
      held(30_000, true), // still held at the last reading: the window ends there
    ];
    expect(offWindowsOf(samples, 1000, 3000)).toEqual([
      { fromMs: 1500, toMs: 7000 },
      { fromMs: 21_000, toMs: 30_000 },
    ]);
    expect(offWindowsOf([], 1000, 3000)).toEqual([]);
  });

  test('a run is cut into on-windows of sizeMs around its off-windows, with the off-windows before and after it', () => {
    const w = runWindows({
      run: { fromMs: 0, toMs: 47_000 },
      before: { fromMs: -10_000, toMs: 0 },
      after: { fromMs: 52_000, toMs: 62_000 },
      offs: [{ fromMs: 21_000, toMs: 26_000 }],
      sizeMs: 10_000,
      minMs: 3000,
    });
    expect(w.map((x) => [x.fromMs, x.toMs, x.isOn])).toEqual([
      [-10_000, 0, false],
      [0, 10_000, true],
      // 21 s before the off-window: two of 10 s, the 1-s remainder joins the second
      [10_000, 21_000, true],
      [21_000, 26_000, false],
      // 21 s after it: two of 10 s and the last takes the 1-s rest; none is shorter than minMs
      [26_000, 36_000, true],
      [36_000, 47_000, true],
      [52_000, 62_000, false],
    ]);
  });

  test('a remainder of minMs or more is a window of its own; an on-span shorter than minMs is left out; off-windows are clipped to the run', () => {
    const w = runWindows({
      run: { fromMs: 0, toMs: 14_000 },
      offs: [
        { fromMs: -5000, toMs: 2000 },
        { fromMs: 13_000, toMs: 20_000 },
      ],
      sizeMs: 5000,
      minMs: 3000,
    });
    expect(w.map((x) => [x.fromMs, x.toMs, x.isOn])).toEqual([
      [0, 2000, false],
      [2000, 7000, true],
      [7000, 13_000, true],
      [13_000, 14_000, false],
    ]);
    const short = runWindows({ run: { fromMs: 0, toMs: 2000 }, offs: [], sizeMs: 5000, minMs: 3000 });
    expect(short).toEqual([]);
    const exact = runWindows({ run: { fromMs: 0, toMs: 13_000 }, offs: [], sizeMs: 5000, minMs: 3000 });
    expect(exact.map((x) => [x.fromMs, x.toMs])).toEqual([
      [0, 5000],
      [5000, 10_000],
      [10_000, 13_000],
    ]);
  });

  test('the other load of a window comes from the CPU readings just around it; a window they do not cover stays unknown', () => {
    // other work: 0.1 cores for the first 10 s, then 0.9 cores
    const readings = Array.from({ length: 21 }, (_, i) => ({ atMs: i * 1000, otherMs: i <= 10 ? i * 100 : 1000 + (i - 10) * 900 }));
    const w = withOtherLoad(
      [
        { fromMs: 0, toMs: 10_000, isOn: false },
        { fromMs: 10_000, toMs: 20_000, isOn: true },
        { fromMs: 5500, toMs: 14_500, isOn: true },
        { fromMs: 15_000, toMs: 25_000, isOn: false },
      ],
      readings,
    );
    expect(w[0]?.otherCores).toBeCloseTo(0.1, 9);
    expect(w[1]?.otherCores).toBeCloseTo(0.9, 9);
    // from the reading at 5 s to the one at 15 s: 5 s at 0.1 and 5 s at 0.9
    expect(w[2]?.otherCores).toBeCloseTo(0.5, 9);
    expect(w[3]?.otherCores).toBeUndefined();
  });
});

describe('the verdict per budget and the paired frontier', () => {
  const pw = (ratio: number, isNoisy = false): PairedWindow => ({
    fromMs: 0,
    toMs: 1,
    onP99: ratio,
    neighboursP99: 1,
    ratio,
    isWithin: ratio <= 1,
    isNoisy,
  });

  test('a run kept a budget when 90% of its on-windows and its pooled ratio are within it; a record judged at 1 is judged again at any budget', () => {
    const p = { windows: [...Array.from({ length: 9 }, () => pw(1.4)), pw(2.5)], pooledRatio: 1.45 };
    expect(shareWithin(p.windows, 1.5)).toBeCloseTo(0.9, 9);
    expect(keptByPairs(p, 1.5)).toBe(true);
    // at 1.4 every window but one is still within, but the pooled ratio is not
    expect(keptByPairs(p, 1.4)).toBe(false);
    // two windows out of ten over: 80%
    expect(keptByPairs({ windows: [...p.windows.slice(1), pw(3)], pooledRatio: 1.2 }, 1.5)).toBe(false);
    expect(keptByPairs({ windows: [], pooledRatio: 1 }, 2)).toBe(false);
  });

  test('the paired frontier is the fastest setting that kept the budget by the paired measure, not by one baseline', () => {
    const point = (id: string, wallMs: number, ratio: number) => ({ id, wallMs, paired: { windows: [pw(ratio)], pooledRatio: ratio } });
    const points = [point('fast-loud', 9000, 4), point('mid', 10_000, 1.8), point('slow-quiet', 30_000, 1.1), { id: 'old', wallMs: 1 }];
    expect(pairedFrontier(points, 2)?.id).toBe('mid');
    expect(pairedFrontier(points, 1.5)?.id).toBe('slow-quiet');
    expect(pairedFrontier(points, 1.05)).toBeUndefined();
  });

  test("a budget's verdict pools its rounds' windows, takes the worst round's pooled ratio and the rounds' mean wall over the frontier", () => {
    const r1 = { wallMs: 12_000, paired: { windows: [pw(1.2), pw(1.9, true)], pooledRatio: 1.5 } };
    const r2 = { wallMs: 18_000, paired: { windows: [pw(1.1), pw(2.2, true), pw(1.3)], pooledRatio: 1.9 } };
    const v = budgetVerdict([r1, r2], 2, 10_000);
    expect(v.windows).toBe(5);
    expect(v.withinShare).toBeCloseTo(0.8, 9);
    expect(v.noisyWindows).toBe(2);
    expect(v.quietWithinShare).toBe(1);
    expect(v.worstPooledRatio).toBe(1.9);
    expect(v.wallRatio).toBeCloseTo(1.5, 9);
    // 80% within is under the 90% asked: not kept, whatever the quiet ones did; 1.5x the frontier: too slow
    expect(v.isKept).toBe(false);
    expect(v.isFastEnough).toBe(false);
    const fine = budgetVerdict([r1], 2, 10_000);
    expect(fine.isKept).toBe(true);
    expect(fine.isFastEnough).toBe(true);
    expect(Number.isNaN(budgetVerdict([r1], 2, undefined).wallRatio)).toBe(true);
  });
});
