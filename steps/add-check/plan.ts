import type { StepKindModule } from '../types';
import { addCheckStep } from './schema';

/** A CHECK constraint added NOT VALID (instant), then validated while writes go on. */
export const addCheck: StepKindModule<typeof addCheckStep> = {
  kind: 'addCheck',
  schema: addCheckStep,
  role: 'schema',
  describe: (step) => ({
    forward: `ADD CONSTRAINT ${step.name} CHECK (${step.expression}) NOT VALID, then VALIDATE CONSTRAINT`,
    rollback: `DROP CONSTRAINT ${step.name}`,
    lock: 'ACCESS EXCLUSIVE (catalog only, instant); SHARE UPDATE EXCLUSIVE while VALIDATE scans (reads and writes go on)',
    online: true,
  }),
};
