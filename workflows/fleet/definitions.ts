import { defineSignal } from '@temporalio/workflow';
import type { FleetTargetState } from '../../core/fleet/progress';

/**
 * What a target's workflow tells its fleet when the target's change has
 * ended. By signal, not by awaiting the child: the fleet continues as new
 * while targets run, and a signal by workflow id reaches the fleet's current run.
 */
export interface TargetFinished {
  target: string;
  attempt: number;
  state: Extract<FleetTargetState, 'completed' | 'failed' | 'rolled_back'>;
  cause?: string;
  /** A scheduled firing's backfill stopped at its window's end (state `completed`): the target is left for the next firing. */
  windowClosed?: boolean;
}

export const targetFinishedSignal = defineSignal<[TargetFinished]>('fleetTargetFinished');
