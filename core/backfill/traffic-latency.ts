/**
 * The live traffic's latency, pure: what a p99Ratio budget is relative to.
 *
 * The probe's own p99 can sit far below the traffic's: in the run the
 * probe's baseline was 1.6 ms and the load's own p99 4.9 ms, so "2x" meant a
 * budget of 3.2 ms, inside the probe's noise, where the operator meant 9.8 ms
 * of traffic p99. A backfill adds about the same wait to every statement that
 * meets it (a chunk's locks, its WAL flush, the CPU it takes), so the budget
 * is held as that allowance: the probe may see its own baseline plus
 * (ratio - 1) x the traffic's baseline. The traffic's p99 comes from
 * pg_stat_statements (when the extension is loaded) over the same windows
 * without the backfill as the probe's baseline.
 */
import type { LatencyBudget } from './throttle';

/** One statement's counters in pg_stat_statements at one moment. */
export interface StatementCounters {
  id: string;
  calls: number;
  totalMs: number;
  /** The sum of the squares of its execution times (calls x (stddev^2 + mean^2)). */
  sumSquaresMs: number;
}

/** Fewer statements than this between two readings: no estimate. */
export const MIN_TRAFFIC_CALLS = 50;

/**
 * The p99 of the statements executed between two readings of
 * pg_stat_statements. Each statement's calls in between have a mean and a
 * variance (from the differences of its sums); each is taken as a lognormal
 * with that mean and variance (latency is skewed to the right: a normal puts
 * the tail too low), and the p99 is that of their mixture, weighted by calls.
 * An estimate: pg_stat_statements keeps no histogram. Undefined under
 * MIN_TRAFFIC_CALLS statements.
 */
export function statementsP99(before: readonly StatementCounters[], after: readonly StatementCounters[], q = 0.99): number | undefined {
  const was = new Map(before.map((s) => [s.id, s]));
  const parts: { w: number; mu: number; sigma: number; mean: number }[] = [];
  let calls = 0;
  for (const s of after) {
    const b = was.get(s.id);
    // a statement evicted and counted again since: its counters started over
    const restarted = b !== undefined && s.calls < b.calls;
    const n = s.calls - (b && !restarted ? b.calls : 0);
    if (n <= 0) continue;
    const sum = s.totalMs - (b && !restarted ? b.totalMs : 0);
    const sumSq = s.sumSquaresMs - (b && !restarted ? b.sumSquaresMs : 0);
    const mean = Math.max(sum / n, 1e-6);
    const variance = Math.max(0, sumSq / n - mean * mean);
    const sigma2 = Math.log(1 + variance / (mean * mean));
    parts.push({ w: n, mu: Math.log(mean) - sigma2 / 2, sigma: Math.sqrt(sigma2), mean });
    calls += n;
  }
  if (calls < MIN_TRAFFIC_CALLS) return undefined;
  const cdf = (x: number) =>
    parts.reduce((acc, p) => acc + (p.w / calls) * (p.sigma === 0 ? (x >= p.mean ? 1 : 0) : normalCdf((Math.log(x) - p.mu) / p.sigma)), 0);
  // bisection between 0 and a bound every part's q-quantile is under
  let lo = 0;
  let hi = Math.max(...parts.map((p) => Math.exp(p.mu + 6 * p.sigma)), ...parts.map((p) => p.mean)) * 1.01;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (cdf(mid) >= q) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The standard normal CDF (Abramowitz and Stegun 7.1.26: error under 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/**
 * A budget whose allowance is under this multiple of the probe's own swing
 * (its noise above its baseline) is raised to it: the probe could not tell
 * the backfill's excess from its own variation.
 */
export const NOISE_MARGIN = 1.2;

export interface ResolvedBudget {
  /** The probe's p99 the controller holds (ms); undefined until a ratio's baseline is measured. */
  budgetP99Ms?: number;
  /**
   * What a ratio is relative to: 'traffic' (the traffic's p99 from pg_stat_statements), or 'probe' (the probe's
   * own baseline: the extension is not loaded, or too few statements ran); absent for an absolute budget.
   */
  reference?: 'traffic' | 'probe';
  /** The budget as asked, when it was raised out of the probe's noise. */
  askedP99Ms?: number;
}

/**
 * The budget the controller holds. p99Ms: as given, the probe's p99. p99Ratio:
 * the probe's baseline plus (ratio - 1) x the traffic's baseline p99, or
 * ratio x the probe's baseline without one; raised, and said so, when what it
 * allows above the probe's baseline is within NOISE_MARGIN x the probe's own
 * swing without the backfill (`noiseP99Ms`): a budget the probe cannot tell
 * from its noise sat at its floor in the run, watching.
 */
export function resolveBudget(
  b: LatencyBudget | undefined,
  m: { probeBaselineMs?: number; trafficBaselineMs?: number; noiseP99Ms?: number },
): ResolvedBudget {
  if (!b) return {};
  if (b.p99Ms !== undefined) return { budgetP99Ms: b.p99Ms };
  if (b.p99Ratio === undefined || m.probeBaselineMs === undefined) return {};
  const base = Math.max(m.probeBaselineMs, 0.05);
  const asked = m.trafficBaselineMs !== undefined ? base + (b.p99Ratio - 1) * Math.max(m.trafficBaselineMs, 0.05) : b.p99Ratio * base;
  const reference = m.trafficBaselineMs !== undefined ? 'traffic' : 'probe';
  if (m.noiseP99Ms === undefined || m.noiseP99Ms <= base) return { budgetP99Ms: asked, reference };
  const floor = base + NOISE_MARGIN * (m.noiseP99Ms - base);
  return asked >= floor ? { budgetP99Ms: asked, reference } : { budgetP99Ms: floor, reference, askedP99Ms: asked };
}
