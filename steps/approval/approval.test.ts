import { approval } from './plan';
import { approvalStep } from './schema';

const ctx = { id: 'g', table: 'public.t', rollbackWindowMs: 0 };

describe('approval: waits for an operator, no lock', () => {
  test('approval: a day by default, rollback on timeout', () => {
    const step = approvalStep.parse({ kind: 'approval' });
    expect(approval.describe(step, ctx)).toMatchObject({
      forward: 'wait up to 1d for `approve`; on timeout: rollback',
      lock: 'none',
      online: true,
    });
    if (approval.role !== 'approval') throw new Error('role');
    expect(approval.approval(step)).toEqual({ timeoutMs: 86_400_000, onTimeout: 'rollback' });
  });
});
