import type { StepKindModule } from '../types';
import { renameConstraintStep } from './schema';

export const renameConstraint: StepKindModule<typeof renameConstraintStep> = {
  kind: 'renameConstraint',
  schema: renameConstraintStep,
  role: 'schema',
  check: (step) => (step.from === step.to ? [{ path: ['to'], message: 'to is the same name as from' }] : []),
  describe: (step) => ({
    forward: `RENAME CONSTRAINT ${step.from} TO ${step.to} (a unique or primary key's index is renamed with it)`,
    rollback: `RENAME CONSTRAINT ${step.to} TO ${step.from}`,
    lock: 'ACCESS EXCLUSIVE (catalog only, instant)',
    online: true,
  }),
};
