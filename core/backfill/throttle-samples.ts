/**
 * What the throttle makes of its probe's samples: quantiles, the p99 of each
 * judging window, the statements a slow one held back, the evidence an excess
 * needs, and the row rate the backfill moves at. Pure arithmetic, table-tested
 * in test/unit/throttle-control.test.ts.
 */
import { CONTROL_TUNING } from './throttle-tuning';

/**
 * The fewest of `n` samples over the budget that count as evidence of an
 * excess: the smallest k with P(X >= k) <= alpha for X ~ Binomial(n, 1 - q),
 * what a latency whose q-quantile sits exactly at the budget puts over it by
 * chance: 1 of 10, 2 of 50, 3 of 100, 5 of 200, 9 of 500 at the defaults.
 */
export function excessNeeded(n: number, q = 0.99, alpha: number = CONTROL_TUNING.excessAlpha): number {
  const p = 1 - q;
  let pmf = Math.pow(1 - p, n); // P(X = 0)
  let tail = 1; // P(X >= k)
  for (let k = 0; k <= n; k++) {
    if (tail <= alpha) return Math.max(1, k);
    tail -= pmf;
    pmf = (pmf * (n - k) * p) / ((k + 1) * (1 - p));
  }
  return n + 1;
}

/**
 * Rows a second since the settings last changed (`since`), over at least
 * `minSpanMs` (chunks land in bursts) and at most a window: the rate the
 * controller compares with the one it set. Over a whole window regardless, the
 * rate a ramp had just doubled never looked reached (the window was mostly
 * the slower settings before it), so the controller added chunk size and lanes
 * instead: one benchmark run went from one lane of 5,000-row chunks to three
 * of 10,000 in two seconds, before the probe's window held any of it.
 */
export function observedRate(seen: readonly { at: number; rows: number }[], now: number, since: number, minSpanMs = 1_000): number {
  const from = Math.min(now - minSpanMs, Math.max(since, now - CONTROL_TUNING.windowMs));
  // the latest reading at or before `from`, else the oldest
  let first = seen[0];
  for (const r of seen) if (r.at <= from) first = r;
  const last = seen[seen.length - 1];
  if (!first || !last || last.at <= first.at) return 0;
  return Math.max(0, ((last.rows - first.rows) * 1000) / (last.at - first.at));
}

/** The p99 of each window of `windowMs`, sliding by a quarter window across the samples. */
export function windowP99s(samples: readonly { at: number; ms: number }[], windowMs: number): number[] {
  const first = samples[0];
  const final = samples[samples.length - 1];
  if (!first || !final) return [];
  const last = final.at;
  const out: number[] = [];
  for (let from = first.at; ; from += windowMs / 4) {
    const p99 = quantile(
      samples.filter((s) => s.at >= from && s.at < from + windowMs).map((s) => s.ms),
      0.99,
    );
    if (p99 !== undefined) out.push(p99);
    if (from + windowMs > last) return out;
  }
}

/** The highest window p99 across the samples: the load's own variation. */
export function highestWindowP99(samples: readonly { at: number; ms: number }[], windowMs: number): number | undefined {
  const all = windowP99s(samples, windowMs);
  return all.length ? Math.max(...all) : undefined;
}

/**
 * The baseline p99: the median of the window p99s, so one stall of the load
 * while the baseline is measured does not set the budget. (The p99 of all the
 * samples did: in 5 of 7 budgeted benchmark runs the 30-s baseline held one
 * stall of the load, 120-210 ms, and came out 2.6-47.7 ms against a clean
 * 2.6-2.9 ms; a budget a ratio of that was no budget.) The stall still counts
 * in the load's own variation (`highestWindowP99`).
 */
export function baselineP99(samples: readonly { at: number; ms: number }[], windowMs: number): number | undefined {
  return quantile(windowP99s(samples, windowMs), 0.5);
}

/**
 * A probe statement's latency with the statements it kept from starting: the
 * probe runs on one connection at a steady pace, so a statement that took
 * `ms` held back every one due within that time, and a live client that keeps
 * its own pace (pgbench -R, an application's requests) would have seen them
 * wait. Timing only the statements that ran understates the tail exactly when
 * the database stalls ("coordinated omission"); this adds the waits the held
 * statements would have seen, ms - every, ms - 2*every, ... down to `every`
 * (as HdrHistogram's recordValueWithExpectedInterval does), at most `cap`.
 */
export function withHeldBack(ms: number, everyMs: number, cap = 200): number[] {
  const out = [ms];
  if (everyMs <= 0) return out;
  for (let missed = ms - everyMs; missed >= everyMs && out.length <= cap; missed -= everyMs) out.push(missed);
  return out;
}

/** The q-quantile (0..1) of the samples, nearest rank; undefined for none. */
export function quantile(samples: readonly number[], q: number): number | undefined {
  if (!samples.length) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
