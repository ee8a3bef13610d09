import { ApplicationFailure } from '@temporalio/activity';
import { DEFAULT_LOCK_TIMEOUT_MS } from '../../core/common/fields';
import type { RolloutStep } from '../../steps/spec';
import { FailureType } from '../../core/common/failures';
import { classifyPgError, failure, pgMessage } from '../../db/errors';
import type { BackfillSpec } from '../../core/common/fields';

/**
 * What the step runner (steps.ts) takes and returns (the workflow imports
 * them as types), and the two rules it reads off its input: how long DDL
 * waits for its lock, and how a database error becomes the step's failure.
 */

export interface StepInput {
  rolloutId: number;
  workflowId: string;
  rolloutName: string;
  stepId: string;
  step: RolloutStep;
  /** Qualified schema.table. */
  table: string;
  allSteps: { id: string; table: string; step: RolloutStep }[];
  actor?: string;
  /** The rollout's lockTimeoutMs: how long DDL waits for its table lock before giving up (and being retried). The step's own wins; 3s when neither is set. */
  lockTimeoutMs?: number;
}
export interface StepApplied {
  alreadyDone: boolean;
  /** The first of `backfills` (what workflows recorded before `backfills` existed read). */
  backfill?: BackfillSpec;
  /** What the workflow runs after the apply, in order. */
  backfills?: BackfillSpec[];
  /** The kind has work for after its backfills: the workflow calls `finishStep` once they are done. */
  finishAfterBackfills?: boolean;
  detail?: Record<string, unknown>;
}

/** What `finishStep` did after the step's backfills (empty: nothing, or the step was no longer applied). */
export interface StepFinished {
  done: string[];
}

/** `held`: only when a kind's revert refused to go on (RevertHold). */
export interface Reverted {
  alreadyReverted: boolean;
  held?: string;
}

/**
 * A lock timeout or a lost connection is worth retrying: a plain Error, so
 * Temporal retries with backoff. Anything else the database rejected will be
 * rejected again: non-retryable, naming the step and quoting Postgres.
 */
export function stepError(err: unknown, i: StepInput, doing: string): unknown {
  if (err instanceof ApplicationFailure) return err;
  const cls = classifyPgError(err);
  if (cls === 'lock')
    return new Error(
      `step "${i.stepId}" (${i.step.kind} on ${i.table}): ${doing} could not get its lock within the lock timeout; live traffic holds ${i.table}, will retry`,
    );
  if (cls === 'transient') return err;
  return failure(FailureType.StepSqlError, `step "${i.stepId}" (${i.step.kind} on ${i.table}): ${doing} failed: ${pgMessage(err)}`, {
    stepId: i.stepId,
    code: (err as { code?: string })?.code ?? null,
  });
}

export function lockTimeoutOf(i: StepInput): number {
  return (i.step as { lockTimeoutMs?: number }).lockTimeoutMs ?? i.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
}
