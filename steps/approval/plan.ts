import type { StepKindModule } from '../types';
import { formatDuration } from '../../core/common/duration';
import { approvalStep } from './schema';

/** Waits for an operator's `approve` (or `rollback`). */
export const approval: StepKindModule<typeof approvalStep> = {
  kind: 'approval',
  schema: approvalStep,
  role: 'approval',
  describe: (step) => ({
    forward: `wait up to ${formatDuration(step.timeout)} for \`approve\`; on timeout: ${step.onTimeout}`,
    rollback: 'nothing',
    lock: 'none',
    online: true,
  }),
  approval: (step) => ({ timeoutMs: step.timeout, onTimeout: step.onTimeout }),
};
