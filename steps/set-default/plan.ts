import type { StepKindModule } from '../types';
import { setDefaultStep } from './schema';

export const setDefault: StepKindModule<typeof setDefaultStep> = {
  kind: 'setDefault',
  schema: setDefaultStep,
  role: 'schema',
  describe: (step) => ({
    forward: `record ${step.column}'s current default, then ALTER COLUMN ${step.column} SET DEFAULT ${step.default} (new rows only; no rewrite)`,
    rollback: 'the recorded default back (or DROP DEFAULT if it had none)',
    lock: 'ACCESS EXCLUSIVE (catalog only, instant)',
    online: true,
  }),
};
