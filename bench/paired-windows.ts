import { summarize } from './pgbench';
import type { Transaction } from './pgbench';

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
    for (let j = i - 1; j >= 0 && !before; j--) if (sorted[j]?.isOn === false) before = sorted[j];
    let after: Window | undefined;
    for (let j = i + 1; j < sorted.length && !after; j++) if (sorted[j]?.isOn === false) after = sorted[j];
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

/** A span of epoch ms. */
export interface Span {
  fromMs: number;
  toMs: number;
}

/** One reading of the run's progress: was the backfill held for an off-window (control.holdCause 'baseline')? */
export interface HoldSample {
  atMs: number;
  isOffWindow: boolean;
}

/**
 * The controller's off-windows, from progress read every few hundred ms: each
 * run of readings held for the baseline, from the first such reading plus
 * `settleMs` (the chunks in flight commit, the lanes see the hold) to the
 * first reading after it that is not held (or the last reading). Spans
 * shorter than `minMs` after the settle are left out: too few transactions
 * to have a p99.
 */
export function offWindowsOf(samples: readonly HoldSample[], settleMs: number, minMs: number): Span[] {
  const sorted = [...samples].sort((a, b) => a.atMs - b.atMs);
  const out: Span[] = [];
  let begun: number | undefined;
  const close = (at: number) => {
    if (begun !== undefined && at - (begun + settleMs) >= minMs) out.push({ fromMs: begun + settleMs, toMs: at });
    begun = undefined;
  };
  for (const s of sorted) {
    if (s.isOffWindow && begun === undefined) begun = s.atMs;
    else if (!s.isOffWindow) close(s.atMs);
  }
  const last = sorted[sorted.length - 1];
  if (last) close(last.atMs);
  return out;
}

/**
 * The windows of one run for the paired verdict: the off-windows before and
 * after it (the load alone just before the first chunk and once the run has
 * ended and the queue behind it drained) and the controller's off-windows
 * inside it, and the rest of the run cut into on-windows of `sizeMs` (a
 * remainder shorter than `minMs` joins the window before it; an on-span
 * shorter than `minMs` between two off-windows is left out).
 */
export function runWindows(o: { run: Span; before?: Span; after?: Span; offs: readonly Span[]; sizeMs: number; minMs: number }): Window[] {
  const offs = o.offs
    .map((w) => ({ fromMs: Math.max(w.fromMs, o.run.fromMs), toMs: Math.min(w.toMs, o.run.toMs) }))
    .filter((w) => w.toMs > w.fromMs)
    .sort((a, b) => a.fromMs - b.fromMs);
  const out: Window[] = [];
  if (o.before) out.push({ ...o.before, isOn: false });
  let at = o.run.fromMs;
  const onSpan = (from: number, to: number) => {
    if (to - from < o.minMs) return;
    const n = Math.max(1, Math.floor((to - from) / o.sizeMs));
    // n windows of sizeMs, the last taking the remainder (whole windows only when the remainder is under minMs)
    const remainder = to - from - n * o.sizeMs;
    const count = remainder >= o.minMs ? n + 1 : n;
    for (let i = 0; i < count; i++) {
      const f = from + i * o.sizeMs;
      out.push({ fromMs: f, toMs: i === count - 1 ? to : f + o.sizeMs, isOn: true });
    }
  };
  for (const w of offs) {
    onSpan(at, w.fromMs);
    out.push({ ...w, isOn: false });
    at = Math.max(at, w.toMs);
  }
  onSpan(at, o.run.toMs);
  if (o.after) out.push({ ...o.after, isOn: false });
  return out;
}

/** A reading of the machine's CPU: cores' worth used by other work since the reading before (cumulative: `otherMs` since the start). */
export interface CpuReading {
  atMs: number;
  /** CPU ms other work used since the first reading (machine busy minus ours, steal included). */
  otherMs: number;
}

/**
 * Other load on the host in each window: cores' worth of CPU not used by the
 * benchmark's own processes, from the readings just around the window (the
 * last at or before its start, the first at or after its end). A window the
 * readings do not cover keeps `otherCores` undefined (shown as such, not as 0).
 */
export function withOtherLoad(windows: readonly Window[], readings: readonly CpuReading[]): Window[] {
  const sorted = [...readings].sort((a, b) => a.atMs - b.atMs);
  return windows.map((w) => {
    let a: CpuReading | undefined;
    let b: CpuReading | undefined;
    for (const r of sorted) {
      if (r.atMs <= w.fromMs) a = r;
      if (r.atMs >= w.toMs && !b) b = r;
    }
    if (!a || !b || b.atMs <= a.atMs) return { ...w, otherCores: undefined };
    return { ...w, otherCores: Math.max(0, (b.otherMs - a.otherMs) / (b.atMs - a.atMs)) };
  });
}

/** What a run's paired verdict keeps in results.json: the windows judged at ratio 1 can be judged again at any budget. */
export interface PairedRecord {
  windows: PairedWindow[];
  pooledRatio: number;
  /** The off-windows it was paired with: how many, and their other load. */
  offWindows: { fromMs: number; toMs: number; p99: number; otherCores?: number }[];
}

/** The share of the share the budget target asks for: on-windows within budget x their neighbours' p99. */
export const PAIRED_MIN_SHARE = 0.9;

/** The share of a run's windows within `budgetRatio` x their neighbours (NaN: none judged), over all or over the quiet ones. */
export function shareWithin(windows: readonly PairedWindow[], budgetRatio: number, quietOnly = false): number {
  const xs = quietOnly ? windows.filter((w) => !w.isNoisy) : windows;
  return xs.length ? xs.filter((w) => w.ratio <= budgetRatio).length / xs.length : Number.NaN;
}

/** A run kept `budgetRatio` by the paired measure: at least PAIRED_MIN_SHARE of its on-windows within, and its pooled ratio within. */
export function keptByPairs(p: Pick<PairedRecord, 'windows' | 'pooledRatio'>, budgetRatio: number): boolean {
  return p.windows.length > 0 && shareWithin(p.windows, budgetRatio) >= PAIRED_MIN_SHARE && p.pooledRatio <= budgetRatio;
}

/**
 * The fastest of `points` that kept `budgetRatio` by the paired measure: the
 * frontier a budgeted run is held to. Undefined when none kept it.
 */
export function pairedFrontier<P extends { wallMs: number; paired?: Pick<PairedRecord, 'windows' | 'pooledRatio'> }>(
  points: readonly P[],
  budgetRatio: number,
): P | undefined {
  const ok = points.filter((p) => p.paired !== undefined && keptByPairs(p.paired, budgetRatio));
  return ok.length ? ok.reduce((a, b) => (b.wallMs < a.wallMs ? b : a)) : undefined;
}

/**
 * The verdict of one budget over its rounds: the share of all their
 * on-windows within budget x their neighbours (and of the quiet ones), the
 * worst round's pooled ratio, the rounds' mean wall over the frontier's, and
 * the windows over the other-load threshold, counted. The target: share >=
 * PAIRED_MIN_SHARE, pooled ratio <= budget, wall <= `wallLimit` x the frontier.
 */
export function budgetVerdict(
  rounds: readonly { wallMs: number; paired: Pick<PairedRecord, 'windows' | 'pooledRatio'> }[],
  budgetRatio: number,
  frontierWallMs: number | undefined,
  wallLimit = 1.25,
): {
  windows: number;
  withinShare: number;
  quietWithinShare: number;
  noisyWindows: number;
  worstPooledRatio: number;
  wallRatio: number;
  isKept: boolean;
  isFastEnough: boolean;
} {
  const all = rounds.flatMap((r) => r.paired.windows);
  const worstPooledRatio = rounds.length ? Math.max(...rounds.map((r) => r.paired.pooledRatio)) : Number.NaN;
  const meanWall = rounds.length ? rounds.reduce((s, r) => s + r.wallMs, 0) / rounds.length : Number.NaN;
  const wallRatio = frontierWallMs ? meanWall / frontierWallMs : Number.NaN;
  const withinShare = shareWithin(all, budgetRatio);
  return {
    windows: all.length,
    withinShare,
    quietWithinShare: shareWithin(all, budgetRatio, true),
    noisyWindows: all.filter((w) => w.isNoisy).length,
    worstPooledRatio,
    wallRatio,
    isKept: all.length > 0 && withinShare >= PAIRED_MIN_SHARE && worstPooledRatio <= budgetRatio,
    isFastEnough: !Number.isNaN(wallRatio) && wallRatio <= wallLimit,
  };
}
