import type { StepKindModule } from '../types';
import { formatDuration } from '../../core/common/duration';
import { contractStep } from './schema';

/** Irreversible: after the rollback window, each earlier step's contract hook, and the listed drops. */
export const contract: StepKindModule<typeof contractStep> = {
  kind: 'contract',
  schema: contractStep,
  role: 'contract',
  describe: (step, ctx) => ({
    forward: `IRREVERSIBLE: after the rollback window (${formatDuration(ctx.rollbackWindowMs)}) since expose, drop the old columns${step.drops?.length ? ` (${step.drops.join(', ')})` : ''}, the rollout's triggers and the older views; an alterColumn's old column goes only once every object of it has its counterpart on the new column (else the rollout holds), the counterparts taking the original names`,
    rollback: 'cannot be rolled back: the old data is gone',
    lock: 'ACCESS EXCLUSIVE (catalog only, instant per DROP/RENAME)',
    online: true,
    isReversible: false,
  }),
  shape: (step) => ({ dropped: step.drops ?? [] }),
};
