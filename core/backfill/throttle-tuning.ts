/**
 * The latency-budget controller's knobs (core/backfill/throttle-control.ts),
 * each with the measurement that set it: how long a window is judged, when an
 * excess counts as evidence, how far a raise or a cut goes and how often.
 */
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
