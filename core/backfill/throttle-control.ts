/**
 * The latency-budget controller, pure: given what the probe measured over
 * the last window (its p50/p99), the budget, replica lag and the settings in
 * force, the next settings (row rate, lanes, chunk size) or a hold, and why.
 *
 * AIMD-like with hysteresis: under 80% of the budget it speeds up (x2 while
 * under half the budget; above, in proportion to the headroom left, 0.8 x
 * budget / p99, between x1.15 and x1.5; each time only once the settings in
 * force have been judged on 80 probe statements); between
 * 80% and 100% it stays, and after a calm spell (no cut for 15 s) probes
 * upwards every 5 s, by 5% and each raise in a row by more (`calmFactor`), in
 * the same order as a raise, so a run does not settle far below what its
 * budget allows; an excess too small to tell from chance counts as calm too
 * (a run sat at its floor "watching" after its load had ended). Over the budget, judged by evidence rather than by one window's
 * p99 (see `excessNeeded`), it gives up first what costs live traffic most:
 * a lane (the CPU the load waits for), then chunk size (how long a live
 * transaction waits behind one chunk), and the row rate only on one lane at
 * the smallest chunk; each cut in proportion to the excess (aiming at 90% of
 * the budget, between x0.5 and x0.85). Speeding up goes the other way: the
 * rate while it binds, then the chunk, then lanes. At the lowest setting and
 * still over, it holds until the p99 is back under 80%. The probe's window
 * restarts at every change (activities/backfill/probe.ts), so each judgement is of the
 * settings in force; a cut waits a full window before the next one (a severe
 * excess, 1.5x the budget, a second); an increase waits half a window after a
 * cut.
 *
 * Why this order: the benchmark's sweep under pgbench on two cores found the
 * load's p99 set by lanes and chunk size, not by the rate: 1,000-row chunks on
 * one lane at full speed kept 2.5x the no-backfill p99, 5,000-row chunks on two
 * lanes 7.7x, and halving the rate of either lowered neither reliably. A live
 * transaction that meets a chunk waits for about that chunk's duration, and at
 * any rate worth having more than 1% of them meet one.
 *
 * The load's own variation: before the first chunk of a p99Ratio budget the
 * probe measures the baseline and the highest p99 a judging window reached
 * without the backfill (`noiseP99Ms`). A budget below that is one the load
 * breaks by itself now and then; the controller then cuts only for an excess
 * that lasts (over the budget in judgements at least half a window apart),
 * and every reason it gives says so, rather than crawling without a word.
 *
 * Replica lag over its limit (or a replica gone, with onReplicaMissing: hold)
 * holds; over half the limit it halves the rate.
 *
 * This file is the rules: which move a step makes. Beside it: the moves
 * themselves (throttle-moves.ts: hold, go, raise, cut), the knobs
 * (throttle-tuning.ts), the arithmetic over the probe's samples
 * (throttle-samples.ts), the baseline of a p99Ratio budget
 * (throttle-baseline.ts) and the settings remembered per table
 * (throttle-memory.ts).
 */
import type { ReplicaMissingPolicy } from './throttle';
import type { Step } from './throttle-moves';
import { capRate, clamp, cut, go, hold, ms, raise, stepOf } from './throttle-moves';
import { excessNeeded } from './throttle-samples';
import { CONTROL_TUNING } from './throttle-tuning';

export type ControlAction = 'measuring' | 'increasing' | 'steady' | 'cutting' | 'holding' | 'slowing' | 'unlimited';
export type HoldCause = 'budget' | 'replica_lag' | 'replica_missing' | 'baseline' | 'probe_stale';

export interface ReplicaLag {
  name: string;
  /** Replay lag in ms; null while the replica is missing. */
  lagMs: number | null;
  /** pg_stat_replication's state ('streaming', ...), or 'missing' for a replica gone from it. */
  state: string;
}

/** What the controller decided and what it saw; leases follow it, progress and metrics show it. */
export interface ControlDecision {
  /** Row rate for the whole backfill; undefined: no rate limit from the controller. */
  rowsPerSecond?: number;
  lanes: number;
  chunkSize: number;
  hold: boolean;
  action: ControlAction;
  holdCause?: HoldCause;
  /** One line for a person: what it does and why. */
  reason: string;
  budgetP99Ms?: number;
  baselineP99Ms?: number;
  /** Epoch ms of the last window without the backfill that fed the baseline (its age is now minus this). */
  baselineAt?: number;
  /** Off-windows taken so far to refresh the baseline (the first measurement not counted). */
  baselineWindows?: number;
  /** The live traffic's p99 without the backfill (pg_stat_statements, same windows), when known. */
  trafficP99Ms?: number;
  /** What a p99Ratio budget is relative to: the traffic's p99, or the probe's own baseline (core/backfill/traffic-latency.ts). */
  budgetReference?: 'traffic' | 'probe';
  /** The budget as asked, when it was raised out of the probe's own noise. */
  askedP99Ms?: number;
  /** The highest p99 of a judging window without the backfill (measured with the baseline). */
  noiseP99Ms?: number;
  p50Ms?: number;
  p99Ms?: number;
  /** Probe statements in the window. */
  samples?: number;
  observedRowsPerSecond?: number;
  maxReplicaLagMs?: number;
  replicas?: ReplicaLag[];
  /** Epoch ms of the decision. */
  at: number;
}

export interface ControlLimits {
  maxLanes: number;
  minChunkSize: number;
  maxChunkSize: number;
  /** The spec's own rate cap, if any. */
  maxRowsPerSecond?: number;
  /** Below this the controller holds instead of slowing further. */
  minRowsPerSecond: number;
}

/**
 * What the controller sees in a window: the figures a decision shows (budgetP99Ms: in ms of probe p99,
 * already resolved from a ratio; undefined: no latency budget), with the sample and rate counts required.
 */
export interface ControlObservation extends Pick<
  ControlDecision,
  | 'budgetP99Ms'
  | 'baselineP99Ms'
  | 'baselineAt'
  | 'baselineWindows'
  | 'trafficP99Ms'
  | 'budgetReference'
  | 'askedP99Ms'
  | 'noiseP99Ms'
  | 'p50Ms'
  | 'p99Ms'
  | 'maxReplicaLagMs'
  | 'replicas'
> {
  now: number;
  samples: number;
  /** Samples in the window slower than the budget; undefined: judge by the p99 alone. */
  overBudget?: number;
  observedRowsPerSecond: number;
  onReplicaMissing?: ReplicaMissingPolicy;
}

/** The controller's memory between steps (kept in the control row, so a restarted probe goes on from it). */
export interface ControlState {
  decision: ControlDecision;
  /** When settings last went down / up. */
  lastCutAt: number;
  lastRaiseAt: number;
  /** Since when the p99 has been over the budget (only kept while the budget is inside the load's own variation). */
  overSince?: number;
  /** When the lanes last resumed after an off-window: like a change, it restarts the judging window. */
  resumedAt?: number;
  /** Calm raises since the last cut: each one in a row a larger step (`calmFactor`). */
  calmRaises?: number;
}

/**
 * The k-th calm raise in a row (k from 0): x1.05, x1.1, x1.2, x1.4, then
 * x1.5. A fixed x1.05 every 5 s took 94 raises, eight minutes, from a
 * 100 rows/s floor to 10,000; each raise the budget kept is evidence for the
 * next, larger one, and a cut starts again at x1.05.
 */
export function calmFactor(calmRaises: number | undefined): number {
  const T = CONTROL_TUNING;
  return Math.min(T.slowRaiseMax, 1 + (T.probeRaise - 1) * 2 ** Math.min(calmRaises ?? 0, 8));
}

/** Where the window judged next starts: the last change of settings, or the end of the last off-window. */
export function judgedSince(s: ControlState): number {
  return Math.max(s.lastCutAt, s.lastRaiseAt, s.resumedAt ?? 0);
}

/**
 * Under a budget a run starts at this many chunks a second on one lane. At 8
 * (40,000 rows/s of 5,000-row chunks) a cold round of the benchmark spent its
 * first 5-7 s doubling towards the 300,000-500,000 rows/s the fixed frontier
 * runs at, 80 probe statements per doubling; one lane of 5,000-row chunks at
 * full speed (about 320,000 rows/s there) kept the load's p99 at 1.17x its
 * no-backfill p99 in the sweep of 2026-12-03, so a start at a half of that
 * on one lane is a careful one still, and two doublings nearer.
 */
const INITIAL_CHUNKS_PER_SECOND = 32;

/** The decision a run starts from: one lane at INITIAL_CHUNKS_PER_SECOND with a budget (it ramps up from there), everything allowed without one. */
export function initialControl(limits: ControlLimits, chunkSize: number, hasBudget: boolean, now: number): ControlState {
  const chunk = clamp(chunkSize, limits.minChunkSize, limits.maxChunkSize);
  const decision: ControlDecision = hasBudget
    ? {
        rowsPerSecond: capRate(Math.max(limits.minRowsPerSecond, chunk * INITIAL_CHUNKS_PER_SECOND), limits),
        lanes: 1,
        chunkSize: chunk,
        hold: false,
        action: 'increasing',
        reason: 'starting slow under a latency budget',
        at: now,
      }
    : {
        rowsPerSecond: limits.maxRowsPerSecond,
        lanes: limits.maxLanes,
        chunkSize: chunk,
        hold: false,
        action: 'unlimited',
        reason: 'no latency budget',
        at: now,
      };
  return { decision, lastCutAt: 0, lastRaiseAt: 0 };
}

/**
 * One controller step. Pure: the same state and observation give the same result. Replicas first (lag is a hard
 * limit, whatever the latency), then the latency budget.
 */
export function controlStep(prev: ControlState, o: ControlObservation, limits: ControlLimits): ControlState {
  const s = stepOf(prev, o, limits);
  return replicaRule(s) ?? budgetRule(s);
}

/** Replica lag over its limit (or a replica gone) holds, over half of it halves the rate; undefined: no replica rule applies. */
function replicaRule(s: Step): ControlState | undefined {
  const T = CONTROL_TUNING;
  const { prev, o, limits } = s;
  const d = prev.decision;
  if (o.maxReplicaLagMs === undefined) return undefined;
  const missing = (o.replicas ?? []).filter((r) => r.state === 'missing');
  if (missing.length && (o.onReplicaMissing ?? 'hold') === 'hold') {
    return hold(
      s,
      'replica_missing',
      `replica ${missing.map((r) => r.name).join(', ')} disappeared from pg_stat_replication (onReplicaMissing: hold)`,
    );
  }
  const worst = Math.max(0, ...(o.replicas ?? []).map((r) => r.lagMs ?? 0));
  if (worst > o.maxReplicaLagMs) return hold(s, 'replica_lag', `replica lag ${ms(worst)} ms over the limit of ${o.maxReplicaLagMs} ms`);
  if (d.holdCause === 'replica_lag' || d.holdCause === 'replica_missing') {
    // released: go on from where it held, at the same careful pace
    return go(s, 'steady', `replica lag ${ms(worst)} ms back under ${o.maxReplicaLagMs} ms`, {}, 'lastRaiseAt');
  }
  if (worst > o.maxReplicaLagMs / 2 && o.now - prev.lastCutAt >= T.windowMs) {
    const current = d.rowsPerSecond ?? Math.max(limits.minRowsPerSecond, o.observedRowsPerSecond);
    const rate = capRate(Math.max(limits.minRowsPerSecond, Math.min(current, o.observedRowsPerSecond || current) * T.cut), limits);
    return go(
      s,
      'slowing',
      `replica lag ${ms(worst)} ms over half the limit of ${o.maxReplicaLagMs} ms: rate halved`,
      { rowsPerSecond: rate },
      'lastCutAt',
    );
  }
  return undefined;
}

/** The latency budget's rule: hold, cut, raise or stay, by the window's p99 against the budget. */
function budgetRule(s: Step): ControlState {
  const T = CONTROL_TUNING;
  const { prev, o, limits, seen } = s;
  const d = prev.decision;
  if (o.budgetP99Ms === undefined) {
    // no latency budget: the replica rules are the only ones; otherwise the spec's own settings
    if (d.action === 'slowing' && o.now - prev.lastCutAt < 5 * T.windowMs) return { ...prev, decision: { ...d, ...seen } };
    return go(s, 'unlimited', 'no latency budget', { rowsPerSecond: limits.maxRowsPerSecond, lanes: limits.maxLanes });
  }
  const budget = o.budgetP99Ms;
  if (o.p99Ms === undefined || o.samples < T.minSamples) {
    return { ...prev, decision: { ...d, ...seen, reason: d.hold ? d.reason : `waiting for probe samples (${o.samples})` } };
  }
  const p99 = o.p99Ms;
  // over only on evidence: more samples over the budget than a p99 at the budget would give by chance
  const needed = excessNeeded(o.samples);
  const isEvident = o.overBudget === undefined || o.overBudget >= needed;
  const under = p99 <= budget * T.headroom;

  if (d.hold && d.holdCause !== 'budget' && d.holdCause !== undefined) {
    // a hold for another cause (baseline, stale probe) ends here: start again carefully
    return go(s, 'steady', `p99 ${ms(p99)} ms, budget ${ms(budget)} ms`, { lanes: 1 }, 'lastCutAt');
  }
  if (d.hold) {
    if (!under)
      return hold(
        s,
        'budget',
        `p99 ${ms(p99)} ms over ${Math.round(T.headroom * 100)}% of the ${ms(budget)} ms budget even at the lowest rate: holding until it falls`,
      );
    return go(
      s,
      'steady',
      `p99 ${ms(p99)} ms back under the ${ms(budget)} ms budget: resuming at the lowest rate`,
      { rowsPerSecond: capRate(limits.minRowsPerSecond, limits), lanes: 1, chunkSize: limits.minChunkSize },
      'lastCutAt',
    );
  }
  const isCalm = o.now - prev.lastCutAt >= T.calmMs && o.now - prev.lastRaiseAt >= T.probeRaiseEveryMs;
  if (p99 > budget && !isEvident) {
    // no evidence of an excess is a budget kept: after a calm spell it climbs as within 80-100% (the run sat at
    // its floor "watching" for minutes after the load had ended, with one or two statements of 200 over)
    if (isCalm) {
      const up = raise(
        s,
        calmFactor(prev.calmRaises),
        `p99 ${ms(p99)} ms over the ${ms(budget)} ms budget in ${o.overBudget} of ${o.samples} samples, too few to tell from chance, and calm`,
      );
      if (up) return { ...up, calmRaises: (prev.calmRaises ?? 0) + 1 };
    }
    return go(
      s,
      'steady',
      `p99 ${ms(p99)} ms over the ${ms(budget)} ms budget in ${o.overBudget} of ${o.samples} samples, too few to tell from chance (${needed} would be): watching`,
    );
  }
  if (p99 > budget) return overBudget(s, p99, budget);
  const isFarUnder = p99 <= budget * T.farUnder;
  const raiseEveryMs = isFarUnder ? T.fastRaiseEveryMs : T.windowMs / 2;
  if (under && o.samples >= T.minRaiseSamples && o.now - prev.lastRaiseAt >= raiseEveryMs && o.now - prev.lastCutAt >= T.windowMs / 2) {
    const factor = isFarUnder ? T.fastRaise : clamp((T.headroom * budget) / p99, T.slowRaise, T.slowRaiseMax);
    const up = raise(s, factor, `p99 ${ms(p99)} ms under the ${ms(budget)} ms budget`);
    if (up) return up;
    return {
      ...prev,
      decision: { ...d, ...seen, action: 'steady', reason: `p99 ${ms(p99)} ms under the ${ms(budget)} ms budget at the highest settings` },
    };
  }
  if (!under && isCalm) {
    // within the budget and calm: probe upwards, each calm raise in a row a larger step (x1.05, x1.1, x1.2, x1.4, x1.5)
    const up = raise(s, calmFactor(prev.calmRaises), `p99 ${ms(p99)} ms within the ${ms(budget)} ms budget and calm`);
    if (up) return { ...up, calmRaises: (prev.calmRaises ?? 0) + 1 };
  }
  return go(s, 'steady', `p99 ${ms(p99)} ms within the ${ms(budget)} ms budget`);
}

/** A p99 over the budget, on evidence: a cut, once the last one has taken effect and (for a noisy budget) the excess lasts. */
function overBudget(s: Step, p99: number, budget: number): ControlState {
  const T = CONTROL_TUNING;
  const { prev, o, seen, noiseNote } = s;
  const d = prev.decision;
  // the probe judges only samples taken since the last cut (its window restarts there): a severe excess in them is
  // answered after a second, not a whole window; a milder one waits for the window to fill again
  if (o.now - prev.lastCutAt < (p99 >= budget * T.severe ? T.severeSettleMs : T.windowMs))
    return {
      ...prev,
      decision: {
        ...d,
        ...seen,
        reason: `p99 ${ms(p99)} ms over the ${ms(budget)} ms budget; the last cut is still taking effect${noiseNote}`,
      },
    };
  if (s.isNoisy && (prev.overSince === undefined || o.now - prev.overSince < T.windowMs / 2)) {
    // the load alone reaches this: cut only for an excess that lasts
    return {
      ...prev,
      overSince: prev.overSince ?? o.now,
      decision: {
        ...d,
        ...seen,
        action: 'steady',
        reason: `p99 ${ms(p99)} ms over the ${ms(budget)} ms budget: waiting to see it last${noiseNote}`,
      },
    };
  }
  return cut(s, p99, budget);
}

/** What a lease does with a decision: wait (hold), stop (its lane is not wanted), or go with this chunk size and its lane's share of the rate. */
export function laneShare(
  d: ControlDecision | undefined,
  laneNo: number,
  ageMs: number,
  staleMs: number,
): { hold: boolean; stop: boolean; chunkSize?: number; rowsPerSecond?: number; reason?: string } {
  if (!d) return { hold: true, stop: false, reason: 'no decision from the probe yet' };
  if (ageMs > staleMs) return { hold: true, stop: false, reason: `the probe's last decision is ${Math.round(ageMs / 1000)} s old` };
  if (laneNo >= d.lanes && laneNo > 0) return { hold: false, stop: true };
  if (d.hold) return { hold: true, stop: false, reason: d.reason };
  return {
    hold: false,
    stop: false,
    chunkSize: d.chunkSize,
    rowsPerSecond: d.rowsPerSecond === undefined ? undefined : d.rowsPerSecond / Math.max(1, d.lanes),
  };
}
