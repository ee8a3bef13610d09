import type { StepKindModule } from '../types';
import { dropDefaultStep } from './schema';

/** Applied at once: a default is catalog text, put back exactly by the revert. */
export const dropDefault: StepKindModule<typeof dropDefaultStep> = {
  kind: 'dropDefault',
  schema: dropDefaultStep,
  role: 'schema',
  describe: (step) => ({
    forward: `record ${step.column}'s default, then ALTER COLUMN ${step.column} DROP DEFAULT (at once: inserts that leave ${step.column} out get NULL from now on)`,
    rollback: 'SET DEFAULT to the recorded default',
    lock: 'ACCESS EXCLUSIVE (catalog only, instant)',
    online: true,
  }),
};
