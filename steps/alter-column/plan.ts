import type { StepKindModule } from '../types';
import { alterColumnStep } from './schema';
import { newColumnName, finalNameOf } from '../../core/rollout/object-names';

/** A new column kept in sync both ways with the old one; contract drops the old one (and takes its name). */
export const alterColumn: StepKindModule<typeof alterColumnStep> = {
  kind: 'alterColumn',
  schema: alterColumnStep,
  role: 'schema',
  check: (step) =>
    step.newName === undefined && step.newType === undefined ? [{ path: [], message: 'alterColumn needs newName, newType or both' }] : [],
  describe: (step) => {
    const target = newColumnName(step);
    return {
      forward: `ADD COLUMN ${target}${step.newType ? ` ${step.newType}` : ''}; two-way triggers keep ${step.column} and ${target} in sync (up: ${step.up}; down: ${step.down}, only for writes through the new version); backfill ${target} (${step.column} is never written by stagefill); ${target} gets a counterpart of every constraint, index, default, key, comment and privilege of ${step.column} (NOT VALID then VALIDATE, indexes CONCURRENTLY), or the step refuses before any data moves`,
      rollback: `drop the triggers and column ${target} (with its counterparts); ${step.column} untouched`,
      lock: 'ACCESS EXCLUSIVE (catalog only, instant)',
      online: true,
    };
  },
  shape: (step) => ({ replaced: [{ column: step.column, by: newColumnName(step), as: finalNameOf(step) }] }),
};
