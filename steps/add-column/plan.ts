import type { StepKindModule } from '../types';
import { addColumnStep } from './schema';

/** A new column, set by a trigger from `up` on every write and backfilled for the rows already there. */
export const addColumn: StepKindModule<typeof addColumnStep> = {
  kind: 'addColumn',
  schema: addColumnStep,
  role: 'schema',
  describe: (step) => ({
    forward: `ADD COLUMN ${step.column} ${step.type}${step.default ? ` DEFAULT ${step.default}` : ''}; dual-write trigger sets it to (${step.up}) on every insert/update; backfill existing rows with the same expression`,
    rollback: `drop the trigger and column ${step.column}`,
    lock: `ACCESS EXCLUSIVE (catalog only, instant${step.default ? '; a volatile DEFAULT would rewrite the table' : ''})`,
    online: true,
  }),
  shape: (step) => ({ added: [step.column] }),
};
