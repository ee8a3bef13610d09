import path from 'node:path';
import { sleep } from '../devstack';
import { startLoad, summarize, perWindow, LoadRun, PgTarget, Transaction, LatencySummary } from './pgbench';
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
}

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
): Promise<UnderLoadResult> {
  const preRollMs = 2000;
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
      await sleep(3000 + 0.3 * (toMs - fromMs));
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
  if (failure) throw new UnderLoadFailure(failure, load);
  return { fill: result, ...load };
}
