/**
 * A lease's side of the latency/replica-lag throttle: before each chunk it
 * follows the probe's latest decision from the backfill's control row (read
 * at most every READ_EVERY_MS): hold, end the lease when its lane is not
 * wanted, or go with the decided chunk size at its lane's share of the rate.
 */
import type { Pool } from 'pg';
import * as health from '../../db/backfill/health';
import type { ControlDecision } from '../../core/backfill/throttle-control';
import { laneShare } from '../../core/backfill/throttle-control';

const READ_EVERY_MS = 250;
/** A decision older than this (the probe died or is restarting slowly) holds the lanes. */
const STALE_MS = 10_000;
/** How long a held lease waits before it looks again. */
const HOLD_STEP_MS = 250;

export interface LeaseGate {
  /** Before a chunk: wait this long (hold or pacing), stop the lease, or go with this chunk size. */
  beforeChunk(): Promise<{ waitMs?: number; stop?: boolean; chunkSize?: number }>;
  /** After a committed chunk: its rows, for pacing at the lane's share of the rate. */
  afterChunk(rows: number): void;
  /** The last decision seen, for the workflow's progress. */
  decision(): ControlDecision | undefined;
}

export function leaseGate(pool: Pool, input: { backfillId: number; laneNo?: number }): LeaseGate {
  let last: { decision?: ControlDecision; ageMs: number; readAt: number } | undefined;
  let nextAt = 0;
  let share: number | undefined;
  let chunkStartedAt = Date.now();
  return {
    async beforeChunk() {
      const now = Date.now();
      if (!last || now - last.readAt >= READ_EVERY_MS) {
        const row = await health.readControl(pool, input.backfillId);
        const stored = row?.state as { control?: { decision?: ControlDecision } } | null | undefined;
        last = { decision: stored?.control?.decision, ageMs: row?.age_ms ?? Infinity, readAt: now };
      }
      const s = laneShare(last.decision, input.laneNo ?? 0, last.ageMs + (now - last.readAt), STALE_MS);
      if (s.stop) return { stop: true };
      if (s.hold) return { waitMs: HOLD_STEP_MS };
      share = s.rowsPerSecond;
      if (share !== undefined && nextAt > now) return { waitMs: nextAt - now };
      chunkStartedAt = now;
      return { chunkSize: s.chunkSize };
    },
    afterChunk(rows: number) {
      nextAt = share ? chunkStartedAt + (rows / share) * 1000 : 0;
    },
    decision: () => last?.decision,
  };
}
