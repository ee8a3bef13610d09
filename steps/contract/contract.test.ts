import { contract } from './plan';
import { contractStep } from './schema';

describe('contract', () => {
  test('plan: irreversible, names its drops and the rollback window', () => {
    const p = contract.describe(contractStep.parse({ kind: 'contract', drops: ['note'] }), {
      id: 'c',
      table: 'public.t',
      rollbackWindowMs: 3_600_000,
    });
    expect(p.forward).toBe(
      "IRREVERSIBLE: after the rollback window (1h) since expose, drop the old columns (note), the rollout's triggers and the older views; an alterColumn's old column goes only once every object of it has its counterpart on the new column (else the rollout holds), the counterparts taking the original names",
    );
    expect(p.isReversible).toBe(false);
  });
});
