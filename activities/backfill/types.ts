import os from 'node:os';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Expectation } from '../../core/common/expect';
import type { ControlDecision } from '../../core/backfill/throttle-control';
import type { HealthReading } from '../../core/backfill/state';

/** The shapes the backfill activities take and return (the workflow imports them as types). */

/** The counters activities feed; the worker's prom-client registry provides them. */
export interface ActivityMetrics {
  rowsProcessed: { inc(labels: Labels, v?: number): void };
  chunksCommitted: { inc(labels: Labels, v?: number): void };
  chunkSeconds: { observe(labels: Labels, v: number): void };
  throttleWaitSeconds: { inc(labels: Labels, v?: number): void };
  gateResults: { inc(labels: Labels & { check: string; result: string }, v?: number): void };
  gateDivergence: { set(labels: Labels & { check: string }, v: number): void };
  rollbacks: { inc(labels: Labels, v?: number): void };
  /** Time leases waited for the health check to come back under its max (worker/metrics.ts). */
  healthBackoffSeconds?: { inc(labels: Labels, v?: number): void };
  /** Lanes waiting for the health check now. */
  lanesBackingOff?: { inc(labels: Labels, v?: number): void; dec(labels: Labels, v?: number): void };
  /** A finished rollout's gauges go (worker/metrics.ts), so no alert fires for it. */
  forgetRollout?(tables: string[]): void;
  /** A finished backfill's gauges go (worker/metrics.ts): the throttle's series of this run, its lanes backing off. */
  forgetBackfill?(table: string, name: string): Promise<void>;
}
type Labels = { kind: string; table: string };

export interface ActivityDeps {
  pool: Pool;
  logger: Logger;
  metrics?: ActivityMetrics;
  /** Fault injection for tests: runs right after a chunk's transaction committed. */
  faults?: { afterChunkCommit?: (chunk: { partitionNo: number; lo: string; hi: string }) => void };
  /** Webhook notifications (activities/notify.ts): the worker's own receiver and its Web UI's address. */
  notify?: NotifyDeps;
}

export interface NotifyDeps {
  /** Gets every event of every run this worker's workflows report (STAGEFILL_WEBHOOK_URL). */
  webhookUrl?: string;
  /** STAGEFILL_WEBHOOK_SECRET: each body is signed with each of these (activities/webhook-signature.ts); unsigned when none. */
  webhookSecrets?: string[];
  /** The Temporal Web UI, for the run's link (STAGEFILL_WEB_UI_URL, else TEMPORAL_UI). */
  webUiUrl?: string;
  /** How long one POST may take (default 5s). */
  timeoutMs?: number;
}

export interface ChunkCheck {
  name: string;
  sql: string;
  expect: Expectation;
}

export interface PrepareBackfillInput {
  workflowId: string;
  table: string;
  name: string;
  /** One column or a composite key's columns. */
  key: string | string[];
  transform: string;
  spec: unknown;
  parallelism: number;
  range?: { from?: string; to?: string };
  /** Start a new generation even when checkpoints exist. */
  restart?: boolean;
  /** Re-run the chunks of the current generation that cover [from, to) as a new generation. */
  replay?: { from: string; to: string };
}

export interface PreparedPartition {
  no: number;
  isDone: boolean;
}

export interface PreparedBackfill {
  backfillId: number;
  generation: number;
  /** The key's types, encoded (core/backfill/keys.ts encodeKeyType). */
  keyType: string;
  isKeyUnique?: boolean;
  transformHash: string;
  partitions: PreparedPartition[];
  rowsTotal: number;
  rowsDone: number;
  chunksDone: number;
  /** Checkpoints of an earlier run were found and are kept. */
  continued: boolean;
  range: { from: string; to: string } | null;
}

export interface LeaseInput {
  backfillId: number;
  generation: number;
  partitionNo: number;
  table: string;
  /** One column or a composite key's columns. */
  key: string | string[];
  /** The key's types, encoded (core/backfill/keys.ts encodeKeyType): "bigint", or ["integer","uuid"] for a composite key. */
  keyType: string;
  /** A unique index on exactly the key: dense partitions are then cut by arithmetic. */
  isKeyUnique?: boolean;
  transform: string;
  transformHash: string;
  validate?: ChunkCheck[];
  chunkSize: number;
  minChunkSize: number;
  maxChunkSize: number;
  targetChunkMs?: number;
  /** This lane's share of the backfill's row rate limit. */
  maxRowsPerSecond?: number;
  healthCheck?: { sql: string; max: number; everyMs: number; backoffMs: number };
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  /** backend_flush_after of the lane's session, kB (core/common/throttle-limits.ts THROTTLE_DEFAULTS.flushAfterKb when absent; 0: the server's). */
  flushAfterKb?: number;
  /** Return after about this long so the workflow sees progress. */
  leaseMs: number;
  /**
   * A partition reserved for this lane: when `partitionNo` is done with lease
   * time left, the lease goes on with it instead of returning for a hand-off
   * through the workflow.
   */
  thenPartitionNo?: number;
  /** Epoch ms after which no new chunk starts (a window's end). */
  deadlineMs?: number;
  /** Latency budget / replica lag: follow the probe's decisions (activities/backfill/control.ts); the lane's number among the lanes. */
  control?: { laneNo: number };
}

export interface LeaseResult {
  /** The partition the lease ended on (`thenPartitionNo` once it moved on). */
  partitionNo?: number;
  /** Every partition the lease finished, in order. */
  donePartitions?: number[];
  /** The partition it ended on is done. */
  partitionDone: boolean;
  chunks: number;
  rows: number;
  sqlMs: number;
  wallMs: number;
  chunkSize: number;
  throttleWaitMs: number;
  lockRetries: number;
  stoppedBy: 'done' | 'lease' | 'deadline' | 'cancelled';
  /** The probe's last decision this lease followed (with `control`). */
  control?: ControlDecision;
  /** With a health check: its last reading in this lease (over the max: the lease was backing off). */
  health?: HealthReading;
}

/** Who committed a checkpoint: host and process. */
export const WORKER_ID = `${os.hostname()}:${process.pid}`;
