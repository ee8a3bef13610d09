/**
 * What a backfill that is in a round of leases is doing now, pure: working
 * (`running`), waiting for its health check to come back under its max
 * (`backing_off`), or held by its latency budget or replica lag
 * (`holding`); and, for every state that is not plain running, one line
 * saying why.
 */
import type { ControlDecision } from './throttle-control';

/** A lease's last health-check reading (activities/backfill/lease.ts). */
export interface HealthReading {
  value: number;
  max: number;
  /** Over the max: the lease backs off. */
  isOver: boolean;
  backoffMs: number;
  /** Epoch ms of the reading. */
  at: number;
}

export type LiveState = 'running' | 'backing_off' | 'holding';

/**
 * The state inside a round. The health check comes first: a lease over it
 * waits before it asks the controller anything.
 */
export function liveState(health: HealthReading | undefined, control: ControlDecision | undefined, isControlled: boolean): LiveState {
  if (health?.isOver) return 'backing_off';
  if (isControlled && control?.hold) return 'holding';
  return 'running';
}

const seconds = (ms: number) => (ms < 1000 ? `${ms} ms` : `${+(ms / 1000).toFixed(1)} s`);

/** Why a backfill is in `state`, in one line; null for plain running and the final states. */
export function stateReason(
  state: string,
  ctx: { health?: HealthReading; control?: ControlDecision; windowOpensAt?: string; deadlineAt?: string },
): string | null {
  switch (state) {
    case 'backing_off': {
      const h = ctx.health;
      return h
        ? `health check returned ${h.value}, over its max of ${h.max}: backing off ${seconds(h.backoffMs)} at a time`
        : 'health check over its max: backing off';
    }
    case 'holding': {
      const c = ctx.control;
      return c ? `held by ${(c.holdCause ?? 'budget').replace('_', ' ')}: ${c.reason}` : 'held by the throttle';
    }
    case 'waiting_window':
      return ctx.windowOpensAt ? `outside its window; it opens at ${ctx.windowOpensAt}` : 'outside its window';
    case 'paused':
      return 'paused by an operator; `stagefill resume` goes on';
    case 'window_closed':
      return ctx.deadlineAt ? `its run window ended at ${ctx.deadlineAt}` : null;
    default:
      return null;
  }
}
