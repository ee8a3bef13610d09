/**
 * A fleet's state as its `progress` query shows it: each target's state, the
 * per-wave counts, the failed targets with their causes. Pure; the fleet
 * workflow keeps the targets, this counts them.
 */

/** `failed`: the target's own change failed (a rollout rolls itself back first); `rolled_back`: reversed by the fleet's rollback. */
export type FleetTargetState = 'pending' | 'running' | 'completed' | 'failed' | 'rolled_back' | 'skipped';

export interface FleetTargetRun {
  name: string;
  /** Index of its wave. */
  wave: number;
  state: FleetTargetState;
  /** Why it failed, rolled back or was skipped. */
  cause?: string;
  /** Runs so far (a `retry` after a halt runs a failed target again). */
  attempt: number;
}

/** `soaking`: its targets have completed and its `soak:` checks run on them. */
export type FleetWaveState = 'pending' | 'running' | 'soaking' | 'halted' | 'waiting_approval' | 'completed' | 'rolled_back' | 'skipped';

/** `window_closed`: a scheduled firing's window ended before every target did; the next firing goes on. */
export type FleetState =
  | 'starting'
  | 'running'
  | 'paused'
  | 'waiting_approval'
  | 'halted'
  | 'rolling_back'
  | 'completed'
  | 'window_closed'
  | 'rolled_back'
  | 'refused';

/** `waiting`: running targets whose change waits (an approval, a held gate); filled in by the client, which asks each change. */
export interface WaveCounts {
  pending: number;
  running: number;
  waiting: number;
  completed: number;
  failed: number;
  rolledBack: number;
  skipped: number;
}

export interface FleetWaveProgress {
  name: string;
  state: FleetWaveState;
  targets: number;
  parallelism: number;
  /** Failures the wave tolerates before it halts (null: any number). */
  allowedFailures: number | null;
  counts: WaveCounts;
}

export interface FleetProgress {
  kind: 'fleet';
  name: string;
  state: FleetState;
  change: { kind: string; name: string };
  currentWave: string | null;
  waves: FleetWaveProgress[];
  /** Targets whose change failed, with the cause (a rollout's names the failed step or gate). */
  failed: { target: string; wave: string; cause: string }[];
  /** Targets the fleet left out, and why (a table shape that differs, with `onShapeMismatch: skip`). */
  skipped: { target: string; reason: string }[];
  /** Every target with its state and the workflow id of its change (for `stagefill status` on one target); `attempt`: runs of its change so far (a `retry` adds one). */
  targets: { name: string; wave: string; state: FleetTargetState; workflowId: string; cause?: string; attempt?: number }[];
  totalTargets: number;
  completedTargets: number;
  percent: number;
  lastError: string | null;
  rollbackReason: string | null;
  /** Run number in the continue-as-new chain. */
  run: number;
}

export function countTargets(targets: FleetTargetRun[]): WaveCounts {
  const c: WaveCounts = { pending: 0, running: 0, waiting: 0, completed: 0, failed: 0, rolledBack: 0, skipped: 0 };
  for (const t of targets) {
    if (t.state === 'rolled_back') c.rolledBack++;
    else c[t.state]++;
  }
  return c;
}

/** Share of targets that reached an end (completed, failed, rolled back, skipped), 0..100. */
export function fleetPercent(targets: FleetTargetRun[]): number {
  if (!targets.length) return 100;
  const ended = targets.filter((t) => t.state !== 'pending' && t.state !== 'running').length;
  return Math.round((ended * 1000) / targets.length) / 10;
}

/** Whether a state ends the target's part of the fleet. */
export const isTargetFinal = (s: FleetTargetState) => s !== 'pending' && s !== 'running';
