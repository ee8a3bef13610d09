import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, RetryState } from '@temporalio/common';
import { causeMessage, heldCause } from '../../workflows/failure-cause';
import { FailureType } from '../../core/common/failures';

const activity = (cause?: Error) =>
  new ActivityFailure('Activity task failed', 'applyStep', '1', RetryState.NON_RETRYABLE_FAILURE, 'w', cause);
const child = (cause?: Error) =>
  new ChildWorkflowFailure('default', { workflowId: 'bf', runId: 'r' }, 'backfillWorkflow', RetryState.NON_RETRYABLE_FAILURE, cause);
const app = (message: string, type?: string) => ApplicationFailure.create({ message, type, nonRetryable: true });

describe('causeMessage: what actually failed, under the wrappers', () => {
  test.each([
    ['a plain error', new Error('boom'), 'boom'],
    ['a string', 'just text', 'just text'],
    ['an activity failure', activity(app('column "x" does not exist', FailureType.StepSqlError)), 'column "x" does not exist'],
    ['a child workflow failure', child(app('chunk [1, 100) failed', FailureType.BackfillFailed)), 'chunk [1, 100) failed'],
    ['a child whose activity failed', child(activity(app('deep cause'))), 'deep cause'],
    ['a wrapper without a cause keeps its own message', activity(), 'Activity task failed'],
  ])('%s', (_, err, message) => {
    expect(causeMessage(err)).toBe(message);
  });
});

describe('heldCause: only a contract that holds', () => {
  test.each([
    ['ContractHeld under an activity failure', activity(app('would drop index i', FailureType.ContractHeld)), 'would drop index i'],
    ['ContractHeld on its own', app('held here', FailureType.ContractHeld), 'held here'],
    ['another failure type', activity(app('syntax error', FailureType.StepSqlError)), undefined],
    ['a plain error', new Error('ContractHeld'), undefined],
    ['under a child workflow (not unwrapped)', child(app('held', FailureType.ContractHeld)), undefined],
  ])('%s', (_, err, held) => {
    expect(heldCause(err)).toBe(held);
  });
});
