/**
 * The baseline a p99Ratio budget is a ratio of: measured before the first
 * chunk, refreshed in off-windows while the backfill runs (the probe,
 * activities/backfill/probe.ts, holds the lanes for them), and the budget in
 * ms it gives.
 */
import type { LatencyBudget } from './throttle';
import { CONTROL_TUNING } from './throttle-tuning';
import { quantile } from './throttle-samples';

/**
 * The baseline's off-windows. A p99Ratio budget is relative to the latency
 * without the backfill, and that moves: the benchmark's load went from 2.6
 * to 104 ms p99 from one minute to the next, and in production a backfill
 * started at 3 a.m. would keep a 3 a.m. budget at 9 a.m. So every `everyMs`
 * the probe holds the backfill for `holdMs` and measures again: the first
 * `settleMs` are left out (chunks in flight commit, leases see the hold
 * within 250 ms), the rest is one judging window. The cost is the share of
 * time held, 6 of 90 s by default: 6.7% on the wall time of a backfill that
 * runs at its budget's pace, nothing while the budget holds it anyway. The
 * baseline is the median of the last `keep` windows (the first measurement
 * one of them), the lower of two: one stall in one off-window does not loosen
 * the budget, and a load that doubles or halves is followed within two
 * windows (three minutes at the defaults).
 */
export const BASELINE_REFRESH = { everyMs: 90_000, holdMs: 6_000, settleMs: 1_000, keep: 3 } as const;

/** The off-windows in force: none for an absolute budget or `refresh: false`; the hold at most half the period. */
export function refreshPlan(latency: LatencyBudget | undefined): { everyMs: number; holdMs: number } | undefined {
  if (latency?.p99Ratio === undefined || latency.refresh === false) return undefined;
  const everyMs = latency.refresh?.everyMs ?? BASELINE_REFRESH.everyMs;
  return { everyMs, holdMs: Math.min(latency.refresh?.holdMs ?? BASELINE_REFRESH.holdMs, Math.floor(everyMs / 2)) };
}

/** The baseline and what fed it: kept with the control row, so a restarted probe goes on from it. */
export interface BaselineState {
  baselineP99Ms: number;
  noiseP99Ms?: number;
  /** Epoch ms of the last window that fed it. */
  at: number;
  /** When the last off-window began (or the first measurement ended): the next is due `everyMs` after. */
  lastWindowAt: number;
  /** Off-windows taken (the first measurement not counted). */
  windows: number;
  /** The p99s of the last windows, oldest first: the baseline is their median. */
  recent: number[];
  /** The traffic's p99 in the same windows (pg_stat_statements), and its median as for the probe's. */
  trafficRecent?: number[];
  trafficP99Ms?: number;
}

/** The baseline as first measured, before the first chunk. */
export function firstBaseline(baselineP99Ms: number, noiseP99Ms: number | undefined, now: number, trafficP99Ms?: number): BaselineState {
  const b: BaselineState = { baselineP99Ms, noiseP99Ms, at: now, lastWindowAt: now, windows: 0, recent: [baselineP99Ms] };
  return trafficP99Ms === undefined ? b : { ...b, trafficP99Ms, trafficRecent: [trafficP99Ms] };
}

/**
 * An off-window is due: refreshing is on and `everyMs` has passed since the
 * last one. Held or not: a hold (by the budget, say) is the moment a stale
 * baseline hurts most, the budget a load that doubled cannot get under, and
 * the off-window costs nothing then.
 */
export function isRefreshDue(plan: { everyMs: number } | undefined, b: BaselineState | undefined, now: number): boolean {
  return plan !== undefined && b !== undefined && now - b.lastWindowAt >= plan.everyMs;
}

/**
 * The baseline after an off-window that began at `begun` with these samples
 * (those of its first `settleMs` left out). Too few samples to judge on
 * (`minSamples`): the window is counted, the baseline stays. The load's own
 * variation (`noiseP99Ms`, measured with the first baseline) moves with it:
 * as a multiple of the baseline it is a property of the load, not of its level.
 */
export function refreshBaseline(
  prev: BaselineState,
  samples: readonly { at: number; ms: number }[],
  begun: number,
  now: number,
  trafficWindowP99Ms?: number,
): BaselineState {
  const off = samples.filter((s) => s.at >= begun + BASELINE_REFRESH.settleMs && s.at <= now).map((s) => s.ms);
  let taken: BaselineState = { ...prev, lastWindowAt: begun, windows: prev.windows + 1 };
  if (trafficWindowP99Ms !== undefined) {
    const trafficRecent = [...(prev.trafficRecent ?? []), trafficWindowP99Ms].slice(-BASELINE_REFRESH.keep);
    taken = { ...taken, trafficRecent, trafficP99Ms: quantile(trafficRecent, 0.5) };
  }
  const p99 = off.length >= CONTROL_TUNING.minSamples ? quantile(off, 0.99) : undefined;
  if (p99 === undefined) return taken;
  const recent = [...prev.recent, p99].slice(-BASELINE_REFRESH.keep);
  const baselineP99Ms = Math.max(quantile(recent, 0.5)!, 0.05);
  const noiseP99Ms = prev.noiseP99Ms === undefined ? undefined : (prev.noiseP99Ms * baselineP99Ms) / prev.baselineP99Ms;
  return { ...taken, baselineP99Ms, noiseP99Ms, at: now, recent };
}

/** The budget in ms: the absolute one, or the ratio times the baseline (undefined until a baseline is measured). */
export function budgetMs(b: { p99Ms?: number; p99Ratio?: number } | undefined, baselineP99Ms: number | undefined): number | undefined {
  if (!b) return undefined;
  if (b.p99Ms !== undefined) return b.p99Ms;
  if (b.p99Ratio !== undefined && baselineP99Ms !== undefined) return b.p99Ratio * Math.max(baselineP99Ms, 0.05);
  return undefined;
}
