import type { StepKindModule } from '../types';
import { dropConstraintStep } from './schema';

/**
 * Deferred to contract, for every constraint type: the safe choice. Dropping a
 * CHECK or foreign key at apply would make the revert re-add it NOT VALID and
 * VALIDATE, which fails (and holds the rollback) as soon as a row written in
 * between breaks it; a unique or primary key would need its index rebuilt.
 */
export const dropConstraint: StepKindModule<typeof dropConstraintStep> = {
  kind: 'dropConstraint',
  schema: dropConstraintStep,
  role: 'schema',
  describe: (step) => ({
    forward: `record constraint ${step.name} (it stays, still enforced, until contract, so a rollback never has to re-validate it); at contract DROP CONSTRAINT ${step.name}`,
    rollback: 'nothing: the constraint was never dropped',
    lock: 'none until contract; then ACCESS EXCLUSIVE (catalog only, instant)',
    online: true,
  }),
};
