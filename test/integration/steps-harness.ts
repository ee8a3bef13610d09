import { useStack, pool, unique } from './harness';
import { makeOrders, legacyChecksum, snapshot, runThroughApproval } from './rollout-harness';

/** What the step-kind test files (steps-*.test.ts) share: their stack, and the rollout-harness helpers that run a step kind. */
export { runThroughApproval, approvalThenContract, snapshot, exists, columnNames, viewOf, startOnFileWorker } from './rollout-harness';

/** Call once at the top of a step-kind test file: a 240 s test timeout, and the stack with a worker on the file's task queue. */
export function useStepsStack(): void {
  jest.setTimeout(240_000);
  useStack({ worker: true });
}

/**
 * A second run of `steps` on a fresh orders table of `rows` rows, rolled back at its approval step: it ends rolled_back
 * with the catalog, its comments and the legacy data as before.
 */
export async function expectRollbackLeavesAsBefore(steps: object[], rows: number): Promise<void> {
  const other = await makeOrders(pool, unique('orders'), rows);
  const before = await snapshot(other);
  const sum = await legacyChecksum(pool, other);
  const second = await runThroughApproval({ table: other, steps }, 'rollback');
  expect(second.out.state).toBe('rolled_back');
  expect(await snapshot(other)).toEqual(before);
  expect(await legacyChecksum(pool, other)).toBe(sum);
}
