import type { StepKindModule } from '../types';
import { alterColumnStep, newColumnOf } from './schema';

/** A new column kept in sync both ways with the old one; contract drops the old one (and takes its name). */
export const alterColumn: StepKindModule<typeof alterColumnStep> = {
  kind: 'alterColumn',
  schema: alterColumnStep,
  role: 'schema',
  check: (step) => (step.newName === undefined && step.newType === undefined ? [{ path: [], message: 'alterColumn needs newName, newType or both' }] : []),
  describe: (step) => {
    const target = newColumnOf(step);
    return {
      forward: `ADD COLUMN ${target}${step.newType ? ` ${step.newType}` : ''}; two-way triggers keep ${step.column} and ${target} in sync (up: ${step.up}; down: ${step.down}); backfill ${target}`,
      rollback: `drop the triggers and column ${target}; ${step.column} untouched`,
      lock: 'ACCESS EXCLUSIVE (catalog only, instant)',
      online: true,
    };
  },
  shape: (step) => ({ replaced: [{ column: step.column, by: newColumnOf(step), as: step.newName ?? step.column }] }),
};
