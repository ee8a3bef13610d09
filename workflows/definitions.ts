import { defineSignal, defineQuery, defineUpdate } from '@temporalio/workflow';
import type { CheckResult } from '../activities/rollout';
import type { ThrottleChange, ThrottleSettings } from '../plan/throttle';
import type { ControlDecision } from '../plan/throttle-control';

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

export type { ThrottleChange, ThrottleSettings, LatencyBudget } from '../plan/throttle';
export type { ControlDecision } from '../plan/throttle-control';

/** Changes throttle and chunk size of a running backfill; the validator rejects bad payloads before they reach history. */
export const setThrottleUpdate = defineUpdate<ThrottleSettings, [ThrottleChange]>('setThrottle');
export const approveUpdate = defineUpdate<string, [ActorPayload]>('approveUpdate');

export type BackfillState = 'starting' | 'running' | 'paused' | 'waiting_window' | 'completed' | 'failed' | 'cancelled' | 'window_closed';

export interface BackfillProgress {
  kind: 'backfill';
  name: string;
  table: string;
  state: BackfillState;
  generation: number;
  chunksDone: number;
  chunksTotal: number;
  rowsProcessed: number;
  rowsTotal: number;
  rowsPerSecond: number;
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
}

export const progressQuery = defineQuery<unknown>('progress');

export type RolloutState =
  | 'starting'
  | 'running'
  | 'paused'
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
  state: RolloutState;
  /** Ids of the steps running now (several when branches overlap). */
  currentStep: string | null;
  runningSteps: string[];
  steps: StepProgress[];
  lastError: string | null;
  /** Why a rollback started (failed gate, signal, timeout, cancellation). */
  rollbackReason: string | null;
  /** Catalog comparison with the snapshot taken before the rollout, after a rollback. */
  catalog?: { table: string; equal: boolean; diff: string[] }[];
}
