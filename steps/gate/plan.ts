import type { StepKindModule } from '../types';
import { describeExpect } from '../../core/common/expect';
import { gateStep } from './schema';

/** Read-only checks, once: on failure roll back, or hold for `retry`. */
export const gate: StepKindModule<typeof gateStep> = {
  kind: 'gate',
  schema: gateStep,
  role: 'gate',
  describe: (step) => ({
    forward: `check ${step.checks.map((c) => `${c.name} ${c.unchanged ? 'unchanged' : describeExpect(c.expect!, c.tolerance)}`).join(', ')}; on failure: ${step.onFailure}`,
    rollback: 'nothing (read-only)',
    lock: 'none (read-only queries)',
    online: true,
  }),
  gate: (step) => ({ checks: step.checks, onFailure: step.onFailure }),
};
