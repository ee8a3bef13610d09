import { summarize, Transaction } from './pgbench';

/**
 * The verdict of a budgeted run by paired windows: the load's p99 in each
 * window the backfill worked (on) against the windows next to it in which it
 * held (off: the controller's off-windows, or pauses the bench makes), both
 * from pgbench's per-transaction log, not from the probe. A slow drift of the
 * host (the load alone went from 2.6 to 104 ms p99 from one minute to the
 * next on the benchmark machine) moves both sides of a pair and cancels out;
 * one baseline measured before the first chunk could not.
 *
 * Other load on the host is measured per window and every window over the
 * threshold is counted and shown beside the verdict: the verdict is over all
 * windows, and over the quiet ones apart, never with the noisy ones silently
 * left out.
 */

export interface Window {
  fromMs: number;
  toMs: number;
  /** The backfill worked in it (on) or held (off). */
  isOn: boolean;
  /** Cores' worth of CPU other work took in the window, when measured. */
  otherCores?: number;
}

export interface PairedWindow {
  fromMs: number;
  toMs: number;
  onP99: number;
  /** The p99 of the transactions of the off-windows just before and just after it, together. */
  neighboursP99: number;
  ratio: number;
  isWithin: boolean;
  otherCores?: number;
  isNoisy: boolean;
}

export interface PairedVerdict {
  budgetRatio: number;
  /** On-windows with an off-window beside them and transactions on both sides. */
  windows: PairedWindow[];
  /** Share of them within budgetRatio x their neighbours' p99 (NaN: none judged). */
  withinShare: number;
  /** The same over the windows with other load at or under the threshold. */
  quietWithinShare: number;
  /** On-windows whose other load was over the threshold (shown, counted in withinShare). */
  noisyWindows: number;
  /** The p99 of every on-window's transactions over that of every off-window's. */
  pooledRatio: number;
  /** The run's wall time over the fixed frontier's for the same budget (NaN without one). */
  wallRatio: number;
}

/** The load's p99 of the transactions that started in these windows (NaN: none). */
function p99Of(txns: Transaction[], windows: Window[]): number {
  const inAny = txns.filter((x) => windows.some((w) => x.startMs >= w.fromMs && x.startMs < w.toMs));
  return inAny.length ? summarize(inAny, -Infinity, Infinity).p99 : Number.NaN;
}

/**
 * The paired verdict of one run under a budget of `budgetRatio` x the load's
 * p99 without the backfill. `windows` in time order; `frontierWallMs` the
 * wall time of the fastest fixed setting that kept the same budget.
 */
export function pairedVerdict(
  txns: Transaction[],
  windows: Window[],
  budgetRatio: number,
  o: { otherCoresThreshold: number; wallMs: number; frontierWallMs?: number },
): PairedVerdict {
  const sorted = [...windows].sort((a, b) => a.fromMs - b.fromMs);
  const paired: PairedWindow[] = [];
  sorted.forEach((w, i) => {
    if (!w.isOn) return;
    // the nearest off-window on each side
    let before: Window | undefined;
    for (let j = i - 1; j >= 0 && !before; j--) if (!sorted[j].isOn) before = sorted[j];
    let after: Window | undefined;
    for (let j = i + 1; j < sorted.length && !after; j++) if (!sorted[j].isOn) after = sorted[j];
    const neighbours = [before, after].filter((x): x is Window => x !== undefined);
    const onP99 = p99Of(txns, [w]);
    const neighboursP99 = p99Of(txns, neighbours);
    if (!neighbours.length || Number.isNaN(onP99) || Number.isNaN(neighboursP99)) return;
    const ratio = onP99 / neighboursP99;
    paired.push({
      fromMs: w.fromMs,
      toMs: w.toMs,
      onP99,
      neighboursP99,
      ratio,
      isWithin: ratio <= budgetRatio,
      otherCores: w.otherCores,
      isNoisy: (w.otherCores ?? 0) > o.otherCoresThreshold,
    });
  });
  const share = (xs: PairedWindow[]) => (xs.length ? xs.filter((x) => x.isWithin).length / xs.length : Number.NaN);
  const on = sorted.filter((w) => w.isOn);
  const off = sorted.filter((w) => !w.isOn);
  return {
    budgetRatio,
    windows: paired,
    withinShare: share(paired),
    quietWithinShare: share(paired.filter((x) => !x.isNoisy)),
    noisyWindows: paired.filter((x) => x.isNoisy).length,
    pooledRatio: p99Of(txns, on) / p99Of(txns, off),
    wallRatio: o.frontierWallMs ? o.wallMs / o.frontierWallMs : Number.NaN,
  };
}

/** One line per budget for the report: the share within, the pooled ratio, the wall against the frontier, and the noisy windows. */
export function formatPairedVerdict(v: PairedVerdict): string {
  const pct = (x: number) => (Number.isNaN(x) ? '-' : `${Math.round(x * 100)}%`);
  const x = (r: number) => (Number.isNaN(r) ? '-' : `${r.toFixed(2)}x`);
  const noisy = v.windows.filter((w) => w.isNoisy);
  return (
    `${v.budgetRatio}x: ${pct(v.withinShare)} of ${v.windows.length} on-windows within ${v.budgetRatio}x their neighbours' p99` +
    ` (quiet ones: ${pct(v.quietWithinShare)}), pooled on/off p99 ${x(v.pooledRatio)}, wall ${x(v.wallRatio)} the fixed frontier;` +
    ` ${v.noisyWindows} window${v.noisyWindows === 1 ? '' : 's'} with other load over the threshold` +
    (noisy.length ? ` (${noisy.map((w) => `${(w.otherCores ?? 0).toFixed(2)} cores, ${x(w.ratio)}`).join('; ')})` : '')
  );
}
