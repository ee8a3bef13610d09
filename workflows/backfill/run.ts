/**
 * A backfill run's state inside its workflow, and what is read from it:
 * the `progress` query, the memo, each lease's input, and what a lease's
 * result changes. Deterministic; shared by backfill.ts (the main loop),
 * backfill-lanes.ts (a round of lanes) and backfill-control.ts (the probe).
 */
import type { CancellationScope } from '@temporalio/workflow';
import { workflowInfo } from '@temporalio/workflow';
import { proxyRoutedActivities } from '../activity-route';
import type { BackfillActivities, LeaseInput, LeaseResult, PreparedBackfill } from '../../activities/backfill/index';
import type { ControlDecision } from '../../core/backfill/throttle-control';
import { isControlled, chunkSizeInForce } from '../../core/backfill/throttle';
import { windowState } from '../../core/common/window';
import type { HealthReading } from '../../core/backfill/state';
import { stateReason } from '../../core/backfill/state';
import type { ReportMark } from '../../core/backfill/progress';
import type { BackfillProgress, BackfillState } from '../definitions';
import type { BackfillSpec } from '../../core/common/fields';
import type { ThrottleSettings } from '../../core/backfill/throttle';

export interface CarriedState {
  prepared: PreparedBackfill;
  throttle: ThrottleSettings;
  isPaused: boolean;
  rowsThisRun: number;
  chunksThisRun: number;
  activeMs: number;
  sqlMs: number;
  throttleWaitMs: number;
  deadlineMs?: number;
  runs: number;
  /** The latency/replica-lag controller's last decision, as the last lease saw it. */
  control?: ControlDecision;
  /** The health check's last reading, as the last lease saw it. */
  health?: HealthReading;
  /** The last report to the rollout this backfill runs for (a rollout's step). */
  report?: ReportMark;
}

export interface BackfillRunInput {
  spec: BackfillSpec;
  leaseMs?: number;
  maxHistoryEvents?: number;
}

/** What the workflow's parts share: the spec, the carried counters and the round under way. */
export interface BackfillRun {
  input: BackfillRunInput;
  spec: BackfillSpec;
  table: string;
  workflowId: string;
  leaseMs: number;
  c: CarriedState;
  state: BackfillState;
  lastError: string | null;
  /** The round of lanes under way: a pause cancels it. */
  lanes?: CancellationScope;
  /** The probe under way in a controlled round: a budget change restarts it. */
  probe?: CancellationScope;
  /** When the round under way started (workflow time), for a live rate. */
  roundStartedAt?: number;
  /** The throttle changed between controlled and not: the round ends and the next one follows the new mode. */
  restartRound: boolean;
  /** Patch markers asked once a run: states inside a round (backing_off, holding); reports to a parent rollout. */
  hasLiveStates?: boolean;
  reportsToParent?: boolean;
}

const DEFAULT_MAX_HISTORY = 8_000;

// Date.now() inside a workflow is the deterministic time of the current workflow task.
export const now = () => Date.now();

export const bookkeeping = proxyRoutedActivities<BackfillActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});

export function historyIsLong(run: BackfillRun): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength > (run.input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY);
}

/** States in which a backfill moves no rows: its rate is 0 and it has no ETA (core/backfill/state.ts says why). */
export const STANDING: ReadonlySet<BackfillState> = new Set<BackfillState>(['paused', 'holding', 'backing_off', 'waiting_window']);

export function progress(run: BackfillRun): BackfillProgress {
  const { c, spec } = run;
  const p = c.prepared;
  const rowsProcessed = p ? p.rowsDone : 0;
  const chunksDone = p ? p.chunksDone : 0;
  const rowsTotal = p ? Math.max(p.rowsTotal, rowsProcessed) : 0;
  // the round under way counts too: rows move at every lease's return, long before the round ends
  const activeMs = c.activeMs + (run.roundStartedAt === undefined ? 0 : now() - run.roundStartedAt);
  const rate = activeMs > 0 ? (c.rowsThisRun * 1000) / activeMs : 0;
  const remainingRows = Math.max(0, rowsTotal - rowsProcessed);
  const done = p ? p.partitions.filter((x) => x.isDone).length : 0;
  const w = spec.window ? windowState(spec.window, now()) : undefined;
  const chunkSize = chunkSizeInForce(c.throttle.chunkSize, c.control, isControlled(c.throttle));
  const out: BackfillProgress = {
    kind: 'backfill',
    name: spec.name,
    table: run.table,
    state: run.state,
    stateReason: stateReason(run.state, {
      health: c.health,
      control: c.control,
      windowOpensAt: w?.opensAtMs ? new Date(w.opensAtMs).toISOString() : undefined,
      deadlineAt: c.deadlineMs !== undefined ? new Date(c.deadlineMs).toISOString() : undefined,
    }),
    generation: p?.generation ?? 0,
    chunksDone,
    chunksBefore: Math.max(0, chunksDone - c.chunksThisRun),
    chunksTotal: chunksDone + Math.ceil(remainingRows / Math.max(1, chunkSize)),
    rowsProcessed,
    rowsTotal,
    // held, paused, backing off or waiting: no row moves now, whatever the run's average; no ETA until it goes on
    rowsPerSecond: STANDING.has(run.state) ? 0 : Math.round(rate),
    averageRowsPerSecond: Math.round(rate),
    etaSeconds: run.state === 'completed' ? 0 : rate > 0 && !STANDING.has(run.state) ? Math.ceil(remainingRows / rate) : null,
    lastError: run.lastError,
    partitionsDone: done,
    partitions: p?.partitions.length ?? 0,
    throttle: c.throttle,
    throttleWaitMs: c.throttleWaitMs,
    chunkSqlMs: Math.round(c.sqlMs),
    activeMs,
    continued: p?.continued ?? false,
    window: w && {
      isOpen: w.isOpen,
      closesAt: w.closesAtMs ? new Date(w.closesAtMs).toISOString() : undefined,
      opensAt: w.opensAtMs ? new Date(w.opensAtMs).toISOString() : undefined,
    },
  };
  if (spec.throttle?.healthCheck && c.health) out.health = c.health;
  if (isControlled(c.throttle))
    out.control = c.control ?? {
      lanes: 0,
      chunkSize: c.throttle.chunkSize,
      hold: true,
      action: 'measuring',
      reason: 'waiting for the probe',
      at: now(),
    };
  return out;
}

export function leaseInput(run: BackfillRun, partitionNo: number, deadlineMs: number | undefined): LeaseInput {
  const { c, spec } = run;
  const t = c.throttle;
  const hc = spec.throttle?.healthCheck;
  return {
    backfillId: c.prepared.backfillId,
    generation: c.prepared.generation,
    partitionNo,
    table: run.table,
    key: spec.key,
    keyType: c.prepared.keyType,
    isKeyUnique: c.prepared.isKeyUnique,
    transform: spec.transform,
    transformHash: c.prepared.transformHash,
    validate: spec.validate,
    chunkSize: t.chunkSize,
    minChunkSize: t.minChunkSize,
    maxChunkSize: t.maxChunkSize,
    targetChunkMs: t.targetChunkMs,
    maxRowsPerSecond: t.maxRowsPerSecond ? t.maxRowsPerSecond / Math.max(1, t.parallelism) : undefined,
    healthCheck: hc && { sql: hc.sql, max: hc.max, everyMs: hc.every, backoffMs: hc.backoff },
    lockTimeoutMs: spec.lockTimeoutMs,
    statementTimeoutMs: spec.statementTimeoutMs,
    ...(spec.throttle?.flushAfterKb !== undefined ? { flushAfterKb: spec.throttle.flushAfterKb } : {}),
    leaseMs: run.leaseMs,
    deadlineMs,
  };
}

export function account(run: BackfillRun, r: LeaseResult): void {
  const { c } = run;
  c.prepared.rowsDone += r.rows;
  c.prepared.chunksDone += r.chunks;
  c.rowsThisRun += r.rows;
  c.chunksThisRun += r.chunks;
  c.sqlMs += r.sqlMs;
  c.throttleWaitMs += r.throttleWaitMs;
  if (c.throttle.targetChunkMs) c.throttle = { ...c.throttle, chunkSize: r.chunkSize };
  if (r.control && (!c.control || r.control.at >= c.control.at)) c.control = r.control;
  if (r.health && (!c.health || r.health.at >= c.health.at)) c.health = r.health;
}

export async function refreshCounters(run: BackfillRun): Promise<void> {
  const { c } = run;
  const counters = await bookkeeping.readBackfillCounters({ backfillId: c.prepared.backfillId, generation: c.prepared.generation });
  c.prepared.rowsDone = counters.rowsDone;
  c.prepared.chunksDone = counters.chunksDone;
}

/** One builder for a run's memo summary, shared with the client (steps/summary.ts). */

export function minDefined(...xs: (number | undefined)[]): number | undefined {
  const d = xs.filter((x): x is number => x !== undefined);
  return d.length ? Math.min(...d) : undefined;
}
