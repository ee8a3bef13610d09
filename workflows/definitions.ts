import { defineSignal, defineQuery, defineUpdate } from '@temporalio/workflow';
import type { CheckResult } from '../activities/rollout/index';
import type { ThrottleChange, ThrottleSettings } from '../core/backfill/throttle';
import type { ControlDecision } from '../core/backfill/throttle-control';
import type { ChildBackfillReport } from '../core/backfill/progress';
import type { HealthReading } from '../core/backfill/state';

/**
 * Every signal, query and update stagefill's workflows answer. The client and
 * the workflows both import these, so the names cannot drift; they are also
 * the names an operator types in the Temporal UI's signal form.
 */
export interface ActorPayload {
  /** Who asked, for the audit trail (free text: a user name, a ticket). */
  by?: string;
  reason?: string;
}

export const pauseSignal = defineSignal<[ActorPayload?]>('pause');
export const resumeSignal = defineSignal<[ActorPayload?]>('resume');
export const approveSignal = defineSignal<[ActorPayload?]>('approve');
export const rollbackSignal = defineSignal<[ActorPayload?]>('rollback');
export const retrySignal = defineSignal<[ActorPayload?]>('retry');

/** A rollout's child backfill reports its rows, rate and state to its rollout (a bounded cadence: core/backfill/progress.ts). */
export const backfillProgressSignal = defineSignal<[ChildBackfillReport]>('backfillProgress');

/** Changes throttle and chunk size of a running backfill; the validator rejects bad payloads before they reach history. */
export const setThrottleUpdate = defineUpdate<ThrottleSettings, [ThrottleChange]>('setThrottle');
export const approveUpdate = defineUpdate<string, [ActorPayload]>('approveUpdate');

/**
 * `running` works chunks; `backing_off` waits for its health check to come back under its max; `holding` is held by its
 * latency budget or replica lag (core/backfill/state.ts); `stateReason` says why for every state but plain running.
 */
export type BackfillState =
  'starting' | 'running' | 'backing_off' | 'holding' | 'paused' | 'waiting_window' | 'completed' | 'failed' | 'cancelled' | 'window_closed';

export interface BackfillProgress {
  kind: 'backfill';
  name: string;
  table: string;
  state: BackfillState;
  /** Why it is in `state` (the health check's value, the hold's cause, when the window opens); null while plainly running. */
  stateReason: string | null;
  generation: number;
  chunksDone: number;
  /** Chunks of this generation done before this run started (what a continued backfill picked up from its checkpoints). */
  chunksBefore: number;
  chunksTotal: number;
  rowsProcessed: number;
  rowsTotal: number;
  /** Rows a second now: the run's average while it works, 0 while paused, holding, backing off or waiting for its window. */
  rowsPerSecond: number;
  /** The run's average over the time it worked. */
  averageRowsPerSecond: number;
  /** Seconds left at the average rate; null while it stands (paused, holding, backing off, waiting) or has no rate yet. */
  etaSeconds: number | null;
  lastError: string | null;
  partitionsDone: number;
  partitions: number;
  throttle: ThrottleSettings;
  throttleWaitMs: number;
  /** Sum of BEGIN..COMMIT time of this run's chunks, for overhead accounting. */
  chunkSqlMs: number;
  activeMs: number;
  continued: boolean;
  window?: { isOpen: boolean; closesAt?: string; opensAt?: string };
  /**
   * With a latency budget or a replica-lag limit: the controller's last
   * decision (budget, measured p50/p99, rate, lanes, chunk size, whether and
   * why it holds, replicas' lag).
   */
  control?: ControlDecision;
  /** With a health check: the last reading a lease took. */
  health?: HealthReading;
}

export const progressQuery = defineQuery<unknown>('progress');

/**
 * `paused`, `backing_off` and `holding` are shown over the workflow's own state (core/backfill/progress.ts
 * shownRolloutState): paused by an operator; a running backfill of it backs off on its health check or is held by its
 * latency budget or replica lag. `waiting_window`: a contract step waits for the rollback window to end.
 */
export type RolloutState =
  | 'starting'
  | 'running'
  | 'paused'
  | 'backing_off'
  | 'holding'
  | 'waiting_window'
  | 'held'
  | 'waiting_approval'
  | 'rolling_back'
  | 'completed'
  | 'rolled_back'
  | 'failed'
  | 'refused'
  | 'cancelled';

export type StepRunState = 'pending' | 'running' | 'completed' | 'held' | 'failed' | 'cancelled' | 'reverting' | 'reverted' | 'skipped';

/** One check's result, as the rollout activities return it. */
export type CheckOutcome = CheckResult;

export interface StepProgress {
  id: string;
  kind: string;
  table: string;
  dependsOn: string[];
  state: StepRunState;
  startedAt?: string;
  finishedAt?: string;
  /** Gate and soak: the last results; held steps show why they hold. */
  checks?: CheckOutcome[];
  /** Steps that run a backfill: its workflow id, for `stagefill status` on it. */
  backfillWorkflowId?: string;
  error?: string;
}

export interface RolloutProgress {
  kind: 'rollout';
  name: string;
  tables: string[];
  /** What the rollout is as an operator sees it: `paused` while paused, whatever it was doing (see RolloutState). */
  state: RolloutState;
  /** Paused by `pause` (until `resume`): nothing new starts, its backfills stop after their current chunk. */
  paused: boolean;
  /** Why it is in `state` when not plainly running (what it was doing when paused, the backfill's hold, the window's end). */
  stateReason: string | null;
  /** A contract step waiting for the rollback window: until when (ISO time); `rollback` still reverts until then. */
  rollbackWindow?: { step: string; endsAt: string };
  /** Ids of the steps running now (several when branches overlap). */
  currentStep: string | null;
  runningSteps: string[];
  steps: StepProgress[];
  /** The error the rollout is stopped on; null once it no longer applies (a `retry` got past it: see lastRecoveredError). */
  lastError: string | null;
  /** An error that held the rollout until a `retry` got past it. */
  lastRecoveredError: string | null;
  /** 0..100: every step counts the same, a step whose backfill runs counts the share of rows it has done. */
  percent: number;
  /** Seconds until the running backfills finish at their current rate; null when none runs or none has a rate yet. */
  etaSeconds: number | null;
  /** The running backfills as they last reported (at most every few seconds and whole percent). */
  backfills: ChildBackfillReport[];
  /** Why a rollback started (failed gate, signal, timeout, cancellation). */
  rollbackReason: string | null;
  /** Catalog comparison with the snapshot taken before the rollout, after a rollback. */
  catalog?: { table: string; equal: boolean; diff: string[] }[];
}
