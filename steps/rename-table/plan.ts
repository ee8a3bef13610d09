import type { StepKindModule, StepProblem } from '../types';
import { renameTableStep } from './schema';

/** The new version sees the table under its new name at expose; ALTER TABLE ... RENAME at contract. */
export const renameTable: StepKindModule<typeof renameTableStep> = {
  kind: 'renameTable',
  schema: renameTableStep,
  role: 'schema',
  check: (step): StepProblem[] => {
    const name = step.table?.split('.').pop();
    return name === step.to ? [{ path: ['to'], message: `to is the table's own name (${step.to}); name another` }] : [];
  },
  describe: (step, ctx) => ({
    forward: `check the name ${step.to} is free next to ${ctx.table}; the new version's view schema shows the table as ${step.to} (expose); rename ${ctx.table} to ${step.to} at contract`,
    rollback: "nothing to undo: the table keeps its name until contract (expose's rollback drops the renamed view)",
    lock: 'none until contract: ACCESS EXCLUSIVE (catalog only, instant)',
    online: true,
  }),
  shape: (step) => ({ tableRenamedTo: step.to }),
};
