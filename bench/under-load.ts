import path from 'node:path';
import { sleep } from '../devstack';
import type { LoadRun, PgTarget, Transaction, LatencySummary } from './pgbench';
import { startLoad, summarize, perWindow } from './pgbench';
import type { BenchOptions } from './options';
import type { FillRun } from './contenders';

/** The load's p99 is also given per window of this many ms (whole windows only): how much it moves by itself. */
const WINDOW_MS = 10_000;

export interface UnderLoadResult {
  fill?: FillRun;
  /** The load's latency over the transactions scheduled while the backfill ran (from `skipMs` on). */
  latency: LatencySummary;
  /** With `skipMs`: the load's latency over the first `skipMs`, before any chunk ran (the load by itself, just before). */
  before?: LatencySummary;
  windowP99s: number[];
  /** Every transaction the load logged, for the paired verdict (not kept in results.json). */
  txns: Transaction[];
  /** Epoch ms the backfill started and ended (the end of the baseline window without one). */
  fromMs: number;
  toMs: number;
  /** With `paired`: the load alone just before the backfill started and after it ended, the queue behind it drained. */
  offBefore?: { fromMs: number; toMs: number };
  offAfter?: { fromMs: number; toMs: number };
}

/** After a backfill ends, the load's queued transactions drain for this long before the off-window after it. */
export const DRAIN_MS = 5000;

/** A backfill that failed under the load (e.g. stopped at its deadline), with what the load measured until then. */
export class UnderLoadFailure extends Error {
  constructor(
    readonly reason: Error,
    readonly load: Omit<UnderLoadResult, 'fill'>,
  ) {
    super(reason.message);
  }
}

/**
 * One contender under the live load: pgbench starts first, the backfill
 * starts once the load is steady, and latency counts the transactions
 * scheduled while the backfill ran. The load then runs on long enough for the
 * transactions queued behind the backfill to finish, and is stopped. Should
 * the backfill outlast the load's time cap, another pgbench run takes over so
 * the whole backfill is covered.
 */
export async function underLoad(
  target: PgTarget,
  opts: BenchOptions,
  label: string,
  estimateMs: number,
  fill: ((tag: number) => Promise<FillRun>) | undefined,
  tag: number,
  baselineMs: number,
  /** Count the load's latency from this long after the backfill starts (a budgeted run's baseline, with no chunk yet). */
  skipMs = 0,
  /**
   * Off-windows for the paired verdict: the load alone for `beforeMs` just
   * before the backfill (inside `skipMs` when that is long enough, else
   * before the backfill starts) and for `afterMs` once it has ended and the
   * load's queue has drained (DRAIN_MS).
   */
  paired?: { beforeMs: number; afterMs: number },
): Promise<UnderLoadResult> {
  const preRollMs = 2000 + (paired && paired.beforeMs > skipMs ? paired.beforeMs : 0);
  const segments: LoadRun[] = [];
  let isFinished = false;
  const launch = (seconds: number) => {
    const run = startLoad(target, {
      clients: opts.loadClients,
      rate: opts.loadRate,
      seconds,
      logPrefix: path.join(opts.stateDir, 'pgbench', `${label}-s${segments.length}`),
    });
    segments.push(run);
    run.done.then(
      () => {
        if (!isFinished) launch(30);
      },
      () => {},
    );
  };
  launch(Math.ceil((preRollMs + (fill ? estimateMs * 4 + 60_000 : baselineMs + 1000)) / 1000));
  await sleep(preRollMs);
  const fromMs = Date.now();
  let result: FillRun | undefined;
  let failure: Error | undefined;
  let toMs: number;
  try {
    if (fill) {
      result = await fill(tag).catch((err: Error) => {
        failure = err;
        return undefined;
      });
      toMs = Date.now();
      // a blocked load catches up after the backfill; its queued transactions belong to the window
      await sleep(Math.max(3000 + 0.3 * (toMs - fromMs), paired ? DRAIN_MS + paired.afterMs + 1000 : 0));
    } else {
      toMs = fromMs + baselineMs;
      await sleep(baselineMs + 500);
    }
  } finally {
    isFinished = true;
    for (const s of segments) s.stop();
  }
  const outputs = await Promise.all(segments.map((s) => s.done));
  const txns: Transaction[] = outputs.flatMap((o) => o.transactions);
  const windowP99s = perWindow(txns, fromMs + skipMs, toMs, WINDOW_MS, true).map((w) => w.latency.p99);
  const load = {
    latency: summarize(txns, fromMs + skipMs, toMs),
    before: skipMs > 0 ? summarize(txns, fromMs, fromMs + skipMs) : undefined,
    windowP99s,
  };
  const from = fromMs + skipMs;
  const frame = {
    txns,
    fromMs: from,
    toMs,
    offBefore: paired && { fromMs: from - paired.beforeMs, toMs: from },
    offAfter: paired && fill ? { fromMs: toMs + DRAIN_MS, toMs: toMs + DRAIN_MS + paired.afterMs } : undefined,
  };
  if (failure) throw new UnderLoadFailure(failure, { ...load, ...frame });
  return { fill: result, ...load, ...frame };
}
