import { useStack } from './harness';

/** What the step-kind test files (steps-*.test.ts) share: their stack, and the rollout-harness helpers that run a step kind. */
export { runThroughApproval, approvalThenContract, snapshot, exists, columnNames, viewOf, startOnFileWorker } from './rollout-harness';

/** Call once at the top of a step-kind test file: a 240 s test timeout, and the stack with a worker on the file's task queue. */
export function useStepsStack(): void {
  jest.setTimeout(240_000);
  useStack({ worker: true });
}
