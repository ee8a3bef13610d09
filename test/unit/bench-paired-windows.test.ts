import { pairedVerdict, formatPairedVerdict, Window } from '../../bench/paired-windows';
import type { Transaction } from '../../bench/pgbench';

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
  expect(v.windows[1].onP99 / 2).toBe(3);
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
  expect(pairedVerdict(txns, [off(0), on(1)], 2, opts).windows[0].onP99).toBe(3);
});
