/**
 * The throttle's limits and defaults, in one place: the spec schema
 * (core/common/fields.ts), a column step's backfill (steps/row-sync.ts), the
 * run-time `setThrottle` update (core/backfill/throttle.ts) and the lanes
 * read the same numbers. Pure.
 */

/** What a backfill runs with where its spec leaves a setting out. */
export const THROTTLE_DEFAULTS = {
  /** Rows per chunk of a rollout's backfill (a step's, a column step's); a backfill spec gives its own. */
  chunkSize: 5000,
  /** Lanes, each on its own connection. */
  parallelism: 2,
  /**
   * The backfill's sessions ask the kernel to write back what they wrote once
   * this much has piled up (PostgreSQL's backend_flush_after, off by default):
   * the dirty pages of a backfill otherwise wait for the kernel's periodic
   * write-back, which then writes hundreds of MB at once and stalls every
   * commit on the disk, live ones included (docs/BENCHMARKS.md).
   */
  flushAfterKb: 256,
} as const;

/** Every bound the throttle has, in one place. */
export const THROTTLE_LIMITS = {
  chunkSize: { min: 1, max: 1_000_000 },
  parallelism: { min: 1, max: 64 },
  targetChunkMs: { min: 10, max: 600_000 },
  /** A latency budget in milliseconds of the probe's p99. */
  p99Ms: { min: 0.05, max: 60_000 },
  /** A latency budget as a multiple of the p99 measured before the first chunk. */
  p99Ratio: { min: 1.05, max: 100 },
  /** How often the latency probe runs its statement (ms between statements). */
  probeEveryMs: { min: 5, max: 1_000 },
  /** How long the p99Ratio baseline is measured (ms). */
  baselineMs: { min: 1_000, max: 600_000 },
  /** How often an off-window refreshes the p99Ratio baseline while the backfill runs (ms). */
  refreshEveryMs: { min: 10_000, max: 24 * 3_600_000 },
  /** How long each off-window holds the backfill (ms); at most half of refreshEveryMs. */
  refreshHoldMs: { min: 2_000, max: 60_000 },
  maxReplicaLagMs: { min: 100, max: 24 * 3_600_000 },
  /** PostgreSQL's backend_flush_after for the backfill's sessions, in kB (0: the server's own); PostgreSQL takes at most 2 MB. */
  flushAfterKb: { min: 0, max: 2048 },
} as const;

/** A probe transaction's statements: at most this many. */
export const PROBE_TRANSACTION_MAX = 20;
/** What a probe transaction's statement may be: a query or a row write, nothing that changes the schema or the session. */
export const PROBE_STATEMENT = /^\s*(select|with|values|insert|update|delete)\b/i;
