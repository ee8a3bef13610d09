/**
 * The throttle probe's own statements (activities/backfill/probe.ts runs
 * them): on a connection of its own, a short statement timed at a steady
 * pace, a lookup on the backfill's key or the spec's `throttle.latency.probe`.
 * A slow statement also stands for the ones it held back (coordinated
 * omission), and one cut off by the timeout counts as that slow.
 */
import type { Context } from '@temporalio/activity';
import { ApplicationFailure, sleep } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { Session } from '../../db/pool';
import { openSession } from '../../db/pool';
import * as health from '../../db/backfill/health';
import { classifyPgError, SETUP_ERROR } from '../../db/errors';
import { withHeldBack } from '../../core/backfill/throttle-samples';
import type { LatencyBudget } from '../../core/backfill/throttle';

/** A probe statement slower than this is cut off (and counted as this slow). */
const PROBE_TIMEOUT_MS = 2_000;

/** What the probe times its statements against: the backfill's table, key and key range. */
export interface ProbeTarget {
  table: string;
  key: string | string[];
  keyType: string;
  /** The key range the default lookup picks from. */
  range: { from: string; to: string } | null;
}

export interface ProbeStatements {
  /** The latencies timed, oldest first, each with when it was taken; the probe drops those it no longer judges. */
  readonly samples: { at: number; ms: number }[];
  /** Statements run so far. */
  readonly count: number;
  /** Probes at a steady pace until `until` (epoch ms), or cancellation. */
  until(until: number): Promise<void>;
  /** Closes the connection: its statement_timeout stays with it, so it is not pooled again. */
  close(): Promise<void>;
}

/** The probe's statements every `everyMs` against `target`; `onTimed` hears each one's latency (for the metrics). */
export function probeStatements(
  pool: Pool,
  ctx: Context,
  target: ProbeTarget,
  latency: LatencyBudget | undefined,
  everyMs: number,
  onTimed: (ms: number) => void,
): ProbeStatements {
  const samples: { at: number; ms: number }[] = [];
  let count = 0;
  let session: Session | undefined;

  const probeOnce = async () => {
    if (!session) {
      session = await openSession(pool);
      await health.setProbeTimeout(session.client, PROBE_TIMEOUT_MS);
    }
    const t0 = performance.now();
    try {
      if (latency?.probe) await health.probeStatement(session.client, latency.probe);
      else if (target.range) await health.probeKeyLookup(session.client, target, target.range.from, target.range.to, Math.random());
      else return;
    } catch (err) {
      if (health.isStatementTimeout(err)) {
        // as slow as it was let run: a blocked probe is the clearest breach there is
        const at = Date.now();
        for (const v of withHeldBack(performance.now() - t0, everyMs)) samples.push({ at, ms: v });
        count++;
        return;
      }
      const s = session;
      session = undefined;
      await s.close(true);
      if (classifyPgError(err) === 'fatal') {
        throw ApplicationFailure.create({
          message: `throttle.latency.probe failed: ${(err as Error).message}`,
          type: SETUP_ERROR,
          nonRetryable: true,
        });
      }
      throw err;
    }
    const ms = performance.now() - t0;
    const at = Date.now();
    // a slow one also stands for the statements it held back (coordinated omission)
    for (const v of withHeldBack(ms, everyMs)) samples.push({ at, ms: v });
    count++;
    onTimed(ms);
  };

  return {
    samples,
    get count() {
      return count;
    },
    async until(until: number) {
      if (!latency) {
        // replica lag only: nothing to time, just wait for the next step
        const wait = until - Date.now();
        if (wait > 0) await sleep(wait).catch(() => {});
        return;
      }
      let next = Date.now();
      while (Date.now() < until && !ctx.cancellationSignal.aborted) {
        await probeOnce();
        next += everyMs;
        const wait = Math.min(next, until) - Date.now();
        if (wait > 0) await sleep(wait).catch(() => {});
        else next = Date.now(); // fell behind (a slow statement): no burst to catch up
      }
    },
    async close() {
      await session?.close(true);
    },
  };
}
