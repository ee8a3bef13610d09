/**
 * (Over 400 lines on purpose: the controller is one state machine, read top
 * to bottom, and the helpers below it, quantiles, the window p99, a lane's
 * share, are its vocabulary; apart they would be read back and forth.)
 *
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
 */
import type { LatencyBudget, ReplicaMissingPolicy } from './throttle';

export type ControlAction = 'measuring' | 'increasing' | 'steady' | 'cutting' | 'holding' | 'slowing' | 'unlimited';
export type HoldCause = 'budget' | 'replica_lag' | 'replica_missing' | 'baseline' | 'probe_stale';

export interface ReplicaLag {
  name: string;
  /** Replay lag in ms; null while the replica is missing. */
  lagMs: number | null;
  state: 'streaming' | 'missing' | string;
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

export const CONTROL_TUNING = {
  /**
   * The window the p99 is judged over (ms). Long enough for a p99 to mean
   * something at the probe's pace (250 statements at the default 20 ms; a
   * 2-s window's p99 was its single slowest statement, and a write probe's
   * commit stalls made every other window look like a breach), short enough to
   * answer a load step within the 10 s the budget's windows are judged over.
   */
  windowMs: 5_000,
  /** Fewer probe samples than this in the window: no judgement. */
  minSamples: 10,
  /**
   * An excess is acted on only when the window holds more samples over the
   * budget than a p99 at the budget gives by chance this rarely (one-sided
   * binomial test). A 5-s window of 200 samples has its p99 in its 2nd or 3rd
   * slowest: the benchmark's probe p99 swung 1.3-16 ms between judgements half
   * a second apart, and each swing over the budget cut the rate by up to half.
   * At 10%, 5 of 200 samples over the budget are needed, 2 of the 40 a second
   * after a cut.
   */
  excessAlpha: 0.1,
  /** Speed up only under this share of the budget; release a hold under it too. */
  headroom: 0.8,
  /** Under this share, speed up fast (slow start). */
  farUnder: 0.5,
  fastRaise: 2,
  /**
   * Between half the budget and `headroom`, a raise of headroom x budget / p99
   * within these two: a p99 at 60% of the budget raises x1.33. A fixed x1.15
   * every 2.5 s took one benchmark run 35 s to climb from 40,000 to 225,000
   * rows/s with the probe at 40-80% of its budget the whole way.
   */
  slowRaise: 1.15,
  slowRaiseMax: 1.5,
  /** Far under the budget the controller raises this often (ms); otherwise every half window. */
  fastRaiseEveryMs: 500,
  /**
   * A raise needs this many probe statements at the settings in force (the
   * window restarts at every change): 1.6 s at the default pace, 2 s at the
   * benchmark's. The load feels a faster backfill seconds late (the kernel
   * writes its dirty pages back in bursts); raising every half second on 20
   * statements took two benchmark runs from 40,000 to 640,000 rows/s in four
   * seconds, and the load stalled for 100-300 ms a few seconds later.
   */
  minRaiseSamples: 80,
  /** The deepest and the mildest cut of the rate. */
  cut: 0.5,
  mildestCut: 0.85,
  /** A cut aims the p99 at this share of the budget (rate x aim x budget / p99, within the two above). */
  cutAim: 0.9,
  /** At or over this multiple of the budget a cut takes both a lane and chunk size, and is repeated after severeSettleMs. */
  severe: 1.5,
  /** After a cut, a severe excess is cut again after this long (ms); a milder one after a window. */
  severeSettleMs: 1_000,
  /** Between 80% and 100% of the budget: no cut for this long (ms), then a raise of probeRaise every probeRaiseEveryMs. */
  calmMs: 15_000,
  probeRaise: 1.05,
  probeRaiseEveryMs: 5_000,
  /** A rate counts as binding when the backfill moves at least this share of it. */
  binding: 0.6,
  /**
   * Under a rate, a chunk holds at most this many seconds of it. A chunk larger
   * than the rate allows in a window makes the observed rate lumpy (one chunk,
   * then nothing for longer than a window), so the rate never looks binding and
   * the controller adds lanes instead of raising it: a run cut to 500 rows/s with
   * 7,500-row chunks crawled at that rate for minutes under a budget it kept.
   */
  maxChunkSeconds: 1,
  /** A rate whose lanes each move one chunk per this long or slower is lumpy over a window: counted as reached. */
  lumpyChunkMs: 1_000,
} as const;

/** A chunk size that holds at most maxChunkSeconds of `rowsPerSecond` (none: any). */
function chunkForRate(chunkSize: number, rowsPerSecond: number | undefined, limits: ControlLimits): number {
  const cap = rowsPerSecond === undefined ? Infinity : rowsPerSecond * CONTROL_TUNING.maxChunkSeconds;
  return clamp(Math.round(Math.min(chunkSize, cap)), limits.minChunkSize, limits.maxChunkSize);
}

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

/** Settings that kept a budget on this table before (stagefill.throttle_memory). */
export interface RememberedSettings {
  rowsPerSecond?: number;
  lanes: number;
  chunkSize: number;
  budgetP99Ms: number;
  p99Ms: number;
  keptAt: number;
}

/**
 * How a run starts from remembered settings: a step below them (a lane less,
 * the rate x0.7), within this run's limits; the climb finds the rest. Only
 * when they kept a budget at least as tight as this one's (a looser one says
 * nothing about a tighter) and are at most `maxAgeMs` old. From the slow
 * start one benchmark round took 35 s to climb from 40,000 to 225,000 rows/s
 * (3x budget, 2026-12-03), on a table its previous rounds had just run on.
 * Settings count as kept after a judging window without a cut (`keptForMs`):
 * with 15 s a backfill done within 15 s of its first chunk (the release after
 * the baseline counts as a cut) remembered nothing, and the benchmark's
 * fastest fixed settings take 10 s.
 */
export const MEMORY = { rateMargin: 0.7, maxAgeMs: 7 * 24 * 3_600_000, keptForMs: 5_000, rememberEveryMs: 5_000 } as const;

/** The decision a budgeted run starts from: the remembered settings a step below; undefined when none fit (the slow start). */
export function rememberedStart(
  limits: ControlLimits,
  chunkSize: number,
  m: RememberedSettings | undefined,
  budgetP99Ms: number,
  now: number,
): ControlState | undefined {
  if (!m || now - m.keptAt > MEMORY.maxAgeMs || m.budgetP99Ms > budgetP99Ms) return undefined;
  const slow = initialControl(limits, chunkSize, true, now);
  const lanes = clamp(m.lanes - 1, 1, limits.maxLanes);
  const rowsPerSecond =
    m.rowsPerSecond === undefined
      ? limits.maxRowsPerSecond
      : capRate(Math.max(limits.minRowsPerSecond, m.rowsPerSecond * MEMORY.rateMargin), limits);
  const chunk = chunkForRate(clamp(m.chunkSize, limits.minChunkSize, limits.maxChunkSize), rowsPerSecond, limits);
  return {
    ...slow,
    decision: {
      ...slow.decision,
      rowsPerSecond,
      lanes,
      chunkSize: chunk,
      reason: `starting a step below the settings that kept a ${ms(m.budgetP99Ms)} ms budget on this table (${m.lanes} lane${m.lanes === 1 ? '' : 's'} of ${m.chunkSize}-row chunks${m.rowsPerSecond === undefined ? '' : ` at ${Math.round(m.rowsPerSecond)} rows/s`})`,
    },
  };
}

/**
 * These settings are worth remembering for the table: they let the backfill
 * work, kept the budget (p99 within it, no cut) for `keptForMs`, and the p99
 * was measured at them.
 */
export function isWorthRemembering(s: ControlState, now: number): boolean {
  const d = s.decision;
  return (
    !d.hold &&
    d.budgetP99Ms !== undefined &&
    d.p99Ms !== undefined &&
    d.p99Ms <= d.budgetP99Ms &&
    (d.action === 'steady' || d.action === 'increasing') &&
    now - s.lastCutAt >= MEMORY.keptForMs &&
    now - judgedSince(s) >= CONTROL_TUNING.windowMs / 2
  );
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

function capRate(r: number, limits: ControlLimits): number {
  return Math.round(limits.maxRowsPerSecond !== undefined ? Math.min(limits.maxRowsPerSecond, r) : r);
}

const ms = (v: number | undefined) => (v === undefined ? '?' : v < 10 ? v.toFixed(2) : v.toFixed(0));

/** One controller step. Pure: the same state and observation give the same result. */
export function controlStep(prev: ControlState, o: ControlObservation, limits: ControlLimits): ControlState {
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
  const hold = (cause: HoldCause, reason: string): ControlState => ({
    ...prev,
    overSince: undefined,
    decision: { ...base, ...seen, lanes: 1, hold: true, action: 'holding', holdCause: cause, reason },
  });
  // a decision that lets the lanes go: `base` with `set` over it; `mark` notes a cut or a raise now
  const go = (
    action: ControlDecision['action'],
    reason: string,
    set: Partial<typeof base> = {},
    mark?: 'lastCutAt' | 'lastRaiseAt',
  ): ControlState => ({
    decision: { ...base, ...seen, ...set, hold: false, action, reason: reason + noiseNote },
    lastCutAt: mark === 'lastCutAt' ? o.now : prev.lastCutAt,
    lastRaiseAt: mark === 'lastRaiseAt' ? o.now : prev.lastRaiseAt,
    // an off-window's end still starts the window judged next; a cut ends a run of calm raises
    resumedAt: prev.resumedAt,
    calmRaises: mark === 'lastCutAt' ? 0 : prev.calmRaises,
  });
  /**
   * Settings one step up by `factor`, the reverse of a cut: the rate while it binds, then the chunk, then a lane;
   * undefined at the highest settings.
   */
  const raise = (factor: number, why: string): ControlState | undefined => {
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
    return go('increasing', `${why}: ${what}`, next, 'lastRaiseAt');
  };
  // a budget the load breaks by itself: every reason says so
  const isNoisy = o.budgetP99Ms !== undefined && o.noiseP99Ms !== undefined && o.budgetP99Ms < o.noiseP99Ms;
  const noiseNote = isNoisy
    ? ` (the budget is inside the load's own variation: without the backfill a ${T.windowMs / 1000}-s window reached p99 ${ms(o.noiseP99Ms)} ms)`
    : o.askedP99Ms !== undefined
      ? ` (budget raised from ${ms(o.askedP99Ms)} ms: the probe cannot tell less from its own swing, p99 ${ms(o.noiseP99Ms)} ms in a ${T.windowMs / 1000}-s window without the backfill)`
      : '';

  // replicas first: lag is a hard limit, whatever the latency
  if (o.maxReplicaLagMs !== undefined) {
    const missing = (o.replicas ?? []).filter((r) => r.state === 'missing');
    if (missing.length && (o.onReplicaMissing ?? 'hold') === 'hold') {
      return hold(
        'replica_missing',
        `replica ${missing.map((r) => r.name).join(', ')} disappeared from pg_stat_replication (onReplicaMissing: hold)`,
      );
    }
    const worst = Math.max(0, ...(o.replicas ?? []).map((r) => r.lagMs ?? 0));
    if (worst > o.maxReplicaLagMs) return hold('replica_lag', `replica lag ${ms(worst)} ms over the limit of ${o.maxReplicaLagMs} ms`);
    if (d.holdCause === 'replica_lag' || d.holdCause === 'replica_missing') {
      // released: go on from where it held, at the same careful pace
      return go('steady', `replica lag ${ms(worst)} ms back under ${o.maxReplicaLagMs} ms`, {}, 'lastRaiseAt');
    }
    if (worst > o.maxReplicaLagMs / 2 && o.now - prev.lastCutAt >= T.windowMs) {
      const current = d.rowsPerSecond ?? Math.max(limits.minRowsPerSecond, o.observedRowsPerSecond);
      const rate = capRate(Math.max(limits.minRowsPerSecond, Math.min(current, o.observedRowsPerSecond || current) * T.cut), limits);
      return go(
        'slowing',
        `replica lag ${ms(worst)} ms over half the limit of ${o.maxReplicaLagMs} ms: rate halved`,
        { rowsPerSecond: rate },
        'lastCutAt',
      );
    }
  }

  if (o.budgetP99Ms === undefined) {
    // no latency budget: the replica rules above are the only ones; otherwise the spec's own settings
    if (d.action === 'slowing' && o.now - prev.lastCutAt < 5 * T.windowMs) return { ...prev, decision: { ...d, ...seen } };
    return go('unlimited', 'no latency budget', { rowsPerSecond: limits.maxRowsPerSecond, lanes: limits.maxLanes });
  }
  const budget = o.budgetP99Ms;
  if (o.p99Ms === undefined || o.samples < T.minSamples) {
    return { ...prev, decision: { ...d, ...seen, reason: d.hold ? d.reason : `waiting for probe samples (${o.samples})` } };
  }
  const p99 = o.p99Ms;
  // over only on evidence: more samples over the budget than a p99 at the budget would give by chance
  const needed = excessNeeded(o.samples);
  const isEvident = o.overBudget === undefined || o.overBudget >= needed;
  const over = p99 > budget && isEvident;
  const under = p99 <= budget * T.headroom;

  if (d.hold && d.holdCause !== 'budget' && d.holdCause !== undefined) {
    // a hold for another cause (baseline, stale probe) ends here: start again carefully
    return go('steady', `p99 ${ms(p99)} ms, budget ${ms(budget)} ms`, { lanes: 1 }, 'lastCutAt');
  }
  if (d.hold) {
    if (!under)
      return hold(
        'budget',
        `p99 ${ms(p99)} ms over ${Math.round(T.headroom * 100)}% of the ${ms(budget)} ms budget even at the lowest rate: holding until it falls`,
      );
    return go(
      'steady',
      `p99 ${ms(p99)} ms back under the ${ms(budget)} ms budget: resuming at the lowest rate`,
      { rowsPerSecond: capRate(limits.minRowsPerSecond, limits), lanes: 1, chunkSize: limits.minChunkSize },
      'lastCutAt',
    );
  }
  const isCalm = o.now - prev.lastCutAt >= T.calmMs && o.now - prev.lastRaiseAt >= T.probeRaiseEveryMs;
  if (p99 > budget && !isEvident) {
    // no evidence of an excess is a budget kept: after a calm spell it climbs as within 80-100% (the issue's run sat at
    // its floor "watching" for minutes after the load had ended, with one or two statements of 200 over)
    if (isCalm) {
      const up = raise(
        calmFactor(prev.calmRaises),
        `p99 ${ms(p99)} ms over the ${ms(budget)} ms budget in ${o.overBudget} of ${o.samples} samples, too few to tell from chance, and calm`,
      );
      if (up) return { ...up, calmRaises: (prev.calmRaises ?? 0) + 1 };
    }
    return go(
      'steady',
      `p99 ${ms(p99)} ms over the ${ms(budget)} ms budget in ${o.overBudget} of ${o.samples} samples, too few to tell from chance (${needed} would be): watching`,
    );
  }
  if (over) {
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
    if (isNoisy && (prev.overSince === undefined || o.now - prev.overSince < T.windowMs / 2)) {
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
    const isSevere = p99 >= budget * T.severe;
    const factor = clamp((T.cutAim * budget) / p99, T.cut, T.mildestCut);
    const set: Partial<typeof base> = {};
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
        return { ...hold('budget', `p99 ${ms(p99)} ms over the ${ms(budget)} ms budget at the lowest rate: holding`), lastCutAt: o.now };
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
    return go('cutting', `p99 ${ms(p99)} ms over the ${ms(budget)} ms budget: ${what.join(', ')}`, set, 'lastCutAt');
  }
  const isFarUnder = p99 <= budget * T.farUnder;
  const raiseEveryMs = isFarUnder ? T.fastRaiseEveryMs : T.windowMs / 2;
  if (under && o.samples >= T.minRaiseSamples && o.now - prev.lastRaiseAt >= raiseEveryMs && o.now - prev.lastCutAt >= T.windowMs / 2) {
    const factor = isFarUnder ? T.fastRaise : clamp((T.headroom * budget) / p99, T.slowRaise, T.slowRaiseMax);
    const up = raise(factor, `p99 ${ms(p99)} ms under the ${ms(budget)} ms budget`);
    if (up) return up;
    return {
      ...prev,
      decision: { ...d, ...seen, action: 'steady', reason: `p99 ${ms(p99)} ms under the ${ms(budget)} ms budget at the highest settings` },
    };
  }
  if (!under && isCalm) {
    // within the budget and calm: probe upwards, each calm raise in a row a larger step (x1.05, x1.1, x1.2, x1.4, x1.5)
    const up = raise(calmFactor(prev.calmRaises), `p99 ${ms(p99)} ms within the ${ms(budget)} ms budget and calm`);
    if (up) return { ...up, calmRaises: (prev.calmRaises ?? 0) + 1 };
  }
  return go('steady', `p99 ${ms(p99)} ms within the ${ms(budget)} ms budget`);
}

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
  if (!samples.length) return [];
  const last = samples[samples.length - 1].at;
  const out: number[] = [];
  for (let from = samples[0].at; ; from += windowMs / 4) {
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
