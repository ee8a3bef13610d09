/**
 * The moves of the latency-budget controller (core/backfill/throttle-control.ts
 * decides which one a step makes): hold the lanes, let them go at some
 * settings, raise the settings one step, or cut them. Each takes the step's
 * givens (`stepOf`) and gives the next controller state; none looks at the
 * clock or anything outside them.
 */
import type { ControlDecision, ControlLimits, ControlObservation, ControlState, HoldCause } from './throttle-control';
import { CONTROL_TUNING } from './throttle-tuning';

/** The settings a decision sets: the row rate (undefined: none), the lanes and the chunk size. */
export interface Settings {
  rowsPerSecond: number | undefined;
  lanes: number;
  chunkSize: number;
}

/** What one controller step works from: the state it holds, what it saw, the limits, and what follows from them. */
export interface Step {
  prev: ControlState;
  o: ControlObservation;
  limits: ControlLimits;
  /** The figures every decision of this step shows (what the probe measured, the budget it judged by). */
  seen: Omit<ControlDecision, 'rowsPerSecond' | 'lanes' | 'chunkSize' | 'hold' | 'action' | 'holdCause' | 'reason'>;
  /** The settings in force, within the limits. */
  base: Settings;
  /** The budget is one the load breaks by itself (inside its own variation). */
  isNoisy: boolean;
  /** What every reason adds when the budget is inside the load's own variation, or was raised out of the probe's. */
  noiseNote: string;
}

export function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

export function capRate(r: number, limits: ControlLimits): number {
  return Math.round(limits.maxRowsPerSecond !== undefined ? Math.min(limits.maxRowsPerSecond, r) : r);
}

/** A latency in ms as a reason shows it: two decimals under 10 ms. */
export const ms = (v: number | undefined) => (v === undefined ? '?' : v < 10 ? v.toFixed(2) : v.toFixed(0));

/** A chunk size that holds at most maxChunkSeconds of `rowsPerSecond` (none: any). */
export function chunkForRate(chunkSize: number, rowsPerSecond: number | undefined, limits: ControlLimits): number {
  const cap = rowsPerSecond === undefined ? Infinity : rowsPerSecond * CONTROL_TUNING.maxChunkSeconds;
  return clamp(Math.round(Math.min(chunkSize, cap)), limits.minChunkSize, limits.maxChunkSize);
}

/** The givens of one controller step. */
export function stepOf(prev: ControlState, o: ControlObservation, limits: ControlLimits): Step {
  const T = CONTROL_TUNING;
  const d = prev.decision;
  const seen = {
    budgetP99Ms: o.budgetP99Ms,
    baselineP99Ms: o.baselineP99Ms,
    baselineAt: o.baselineAt,
    baselineWindows: o.baselineWindows,
    trafficP99Ms: o.trafficP99Ms,
    budgetReference: o.budgetReference,
    askedP99Ms: o.askedP99Ms,
    noiseP99Ms: o.noiseP99Ms,
    p50Ms: o.p50Ms,
    p99Ms: o.p99Ms,
    samples: o.samples,
    observedRowsPerSecond: Math.round(o.observedRowsPerSecond),
    maxReplicaLagMs: o.maxReplicaLagMs,
    replicas: o.replicas,
    at: o.now,
  };
  const base = {
    rowsPerSecond: d.rowsPerSecond,
    lanes: Math.min(d.lanes, limits.maxLanes),
    chunkSize: clamp(d.chunkSize, limits.minChunkSize, limits.maxChunkSize),
  };
  // a budget the load breaks by itself: every reason says so
  const isNoisy = o.budgetP99Ms !== undefined && o.noiseP99Ms !== undefined && o.budgetP99Ms < o.noiseP99Ms;
  const noiseNote = isNoisy
    ? ` (the budget is inside the load's own variation: without the backfill a ${T.windowMs / 1000}-s window reached p99 ${ms(o.noiseP99Ms)} ms)`
    : o.askedP99Ms !== undefined
      ? ` (budget raised from ${ms(o.askedP99Ms)} ms: the probe cannot tell less from its own swing, p99 ${ms(o.noiseP99Ms)} ms in a ${T.windowMs / 1000}-s window without the backfill)`
      : '';
  return { prev, o, limits, seen, base, isNoisy, noiseNote };
}

/** Hold the lanes (one lane, waiting) for `cause`. */
export function hold(s: Step, cause: HoldCause, reason: string): ControlState {
  return {
    ...s.prev,
    overSince: undefined,
    decision: { ...s.base, ...s.seen, lanes: 1, hold: true, action: 'holding', holdCause: cause, reason },
  };
}

/** A decision that lets the lanes go: the settings in force with `set` over them; `mark` notes a cut or a raise now. */
export function go(
  s: Step,
  action: ControlDecision['action'],
  reason: string,
  set: Partial<Settings> = {},
  mark?: 'lastCutAt' | 'lastRaiseAt',
): ControlState {
  return {
    decision: { ...s.base, ...s.seen, ...set, hold: false, action, reason: reason + s.noiseNote },
    lastCutAt: mark === 'lastCutAt' ? s.o.now : s.prev.lastCutAt,
    lastRaiseAt: mark === 'lastRaiseAt' ? s.o.now : s.prev.lastRaiseAt,
    // an off-window's end still starts the window judged next; a cut ends a run of calm raises
    resumedAt: s.prev.resumedAt,
    calmRaises: mark === 'lastCutAt' ? 0 : s.prev.calmRaises,
  };
}

/**
 * Settings one step up by `factor`, the reverse of a cut: the rate while it binds, then the chunk, then a lane;
 * undefined at the highest settings.
 */
export function raise(s: Step, factor: number, why: string): ControlState | undefined {
  const T = CONTROL_TUNING;
  const { base, limits, o } = s;
  const rate = base.rowsPerSecond;
  // a lane moving one chunk per T.lumpyChunkMs or slower makes the rate over a window lumpy: no proof it is not reached
  const isLumpy = rate !== undefined && (base.chunkSize * base.lanes * 1000) / rate >= T.lumpyChunkMs;
  const isBinding = rate === undefined || isLumpy || o.observedRowsPerSecond >= rate * T.binding;
  let next = { ...base };
  let what: string;
  if (isBinding && (limits.maxRowsPerSecond === undefined || (rate ?? 0) < limits.maxRowsPerSecond)) {
    next.rowsPerSecond = capRate(Math.max(limits.minRowsPerSecond, (rate ?? o.observedRowsPerSecond) * factor), limits);
    what = `rate to ${next.rowsPerSecond} rows/s`;
  } else if (base.chunkSize < chunkForRate(limits.maxChunkSize, rate, limits)) {
    next.chunkSize = chunkForRate(Math.max(base.chunkSize + 1, base.chunkSize * factor), rate, limits);
    what = `chunk size to ${next.chunkSize}`;
  } else if (base.lanes < limits.maxLanes) {
    next.lanes = base.lanes + 1;
    what = `lanes to ${next.lanes}`;
  } else {
    return undefined;
  }
  // a rate the backfill does not reach is no limit: keep it near what it does, but not under a second of the
  // chunk just raised (chunkForRate below would take the raise back: the controller "increased" and nothing moved)
  if (next.rowsPerSecond !== undefined && o.observedRowsPerSecond > 0 && !isBinding) {
    next = {
      ...next,
      rowsPerSecond: capRate(
        Math.max(
          next.rowsPerSecond > o.observedRowsPerSecond * 2 ? o.observedRowsPerSecond * 2 : next.rowsPerSecond,
          Math.min(next.rowsPerSecond, next.chunkSize / T.maxChunkSeconds),
          limits.minRowsPerSecond,
        ),
        limits,
      ),
    };
  }
  // under a rate, never a chunk of more than a second of it, whichever setting went up
  next.chunkSize = chunkForRate(next.chunkSize, next.rowsPerSecond, limits);
  return go(s, 'increasing', `${why}: ${what}`, next, 'lastRaiseAt');
}

/**
 * Settings cut for a p99 over the budget, in proportion to the excess: first what costs live traffic most, a lane,
 * then chunk size (a severe excess gives both at once), and the rate only on one lane at the smallest chunk; at the
 * lowest rate, a hold.
 */
export function cut(s: Step, p99: number, budget: number): ControlState {
  const T = CONTROL_TUNING;
  const { base, limits, o } = s;
  const d = s.prev.decision;
  const isSevere = p99 >= budget * T.severe;
  const factor = clamp((T.cutAim * budget) / p99, T.cut, T.mildestCut);
  const set: Partial<Settings> = {};
  const what: string[] = [];
  // first what costs live traffic most: a lane, then chunk size (a severe excess gives both at once)
  if (base.lanes > 1) {
    set.lanes = base.lanes - 1;
    what.push(`a lane less (${set.lanes})`);
  }
  if ((isSevere || base.lanes <= 1) && base.chunkSize > limits.minChunkSize) {
    set.chunkSize = clamp(Math.round(base.chunkSize * factor), limits.minChunkSize, limits.maxChunkSize);
    what.push(`chunks x${factor.toFixed(2)} to ${set.chunkSize} rows`);
  }
  if (!what.length) {
    // one lane at the smallest chunk: the rate is what is left
    const atFloor = (d.rowsPerSecond ?? Infinity) <= limits.minRowsPerSecond;
    if (atFloor) {
      return { ...hold(s, 'budget', `p99 ${ms(p99)} ms over the ${ms(budget)} ms budget at the lowest rate: holding`), lastCutAt: o.now };
    }
    const current = Math.min(d.rowsPerSecond ?? Infinity, o.observedRowsPerSecond > 0 ? o.observedRowsPerSecond : Infinity);
    set.rowsPerSecond = capRate(
      Math.max(limits.minRowsPerSecond, (Number.isFinite(current) ? current : limits.minRowsPerSecond * 4) * factor),
      limits,
    );
    what.push(`rate x${factor.toFixed(2)} to ${set.rowsPerSecond} rows/s`);
  }
  // under a rate, never a chunk of more than a second of it
  set.chunkSize = chunkForRate(set.chunkSize ?? base.chunkSize, set.rowsPerSecond ?? base.rowsPerSecond, limits);
  return go(s, 'cutting', `p99 ${ms(p99)} ms over the ${ms(budget)} ms budget: ${what.join(', ')}`, set, 'lastCutAt');
}
