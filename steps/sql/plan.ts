import type { StepKindModule } from '../types';
import { oneLine } from '../../plan/text';
import { sqlStep } from './schema';

/** The operator's own statements, in the step's transaction, with their own revert. */
export const sql: StepKindModule<typeof sqlStep> = {
  kind: 'sql',
  schema: sqlStep,
  role: 'schema',
  describe: (step) => ({
    forward: `run: ${oneLine(step.apply)}`,
    rollback: `run: ${oneLine(step.revert)}`,
    lock: 'whatever the statements take, held until they commit (under lock_timeout)',
    online: false,
  }),
};
