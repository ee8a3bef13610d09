/**
 * What failed, under Temporal's wrappers: an activity's or a child
 * workflow's failure carries the real error as its cause. In workflows/, not
 * plan/, as it reads the SDK's failure classes (@temporalio/common only, no
 * workflow APIs, so a unit table test pins it).
 */
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure } from '@temporalio/common';
import { FailureType } from '../core/common/failures';

/** The root cause's message under activity wrappers (a child workflow's failure is kept whole): the database's own words for a failed chunk. */
export function failureMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure || e instanceof Error) return e.message;
  return String(e);
}

/** The innermost cause's message: through activity and child-workflow wrappers to what actually failed. */
export function causeMessage(err: unknown): string {
  let e: unknown = err;
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause) e = e.cause;
  return e instanceof ApplicationFailure || e instanceof Error ? e.message : String(e);
}

/** The message of a contract's ContractHeld failure, or undefined for any other error. */
export function heldCause(err: unknown): string | undefined {
  let e: unknown = err;
  while (e instanceof ActivityFailure && e.cause) e = e.cause;
  return e instanceof ApplicationFailure && e.type === FailureType.ContractHeld ? e.message : undefined;
}
