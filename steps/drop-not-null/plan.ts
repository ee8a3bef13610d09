import type { StepKindModule } from '../types';
import { dropNotNullStep } from './schema';

/** Applied at once (loosening breaks no writer); the revert restores NOT NULL without a long lock. */
export const dropNotNull: StepKindModule<typeof dropNotNullStep> = {
  kind: 'dropNotNull',
  schema: dropNotNullStep,
  role: 'schema',
  describe: (step) => ({
    forward: `ALTER COLUMN ${step.column} DROP NOT NULL (at once: no writer breaks)`,
    rollback: `ADD CHECK (${step.column} IS NOT NULL) NOT VALID, VALIDATE, SET NOT NULL (catalog only given the check), drop the check; fails while NULLs were written meanwhile`, // lint-layers: ok (plan text)
    lock: 'ACCESS EXCLUSIVE (catalog only, instant); the revert: SHARE UPDATE EXCLUSIVE while VALIDATE scans',
    online: true,
  }),
};
