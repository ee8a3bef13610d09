import type { StepKindModule } from '../types';
import { addUniqueStep } from './schema';
import { uniqueNameOf } from '../../core/rollout/object-names';

/** A unique index built concurrently, then attached as the constraint in an instant. */
export const addUnique: StepKindModule<typeof addUniqueStep> = {
  kind: 'addUnique',
  schema: addUniqueStep,
  role: 'schema',
  check: (step) =>
    new Set(step.columns).size !== step.columns.length ? [{ path: ['columns'], message: 'columns names a column twice' }] : [],
  describe: (step, ctx) => {
    const name = uniqueNameOf(step, ctx.table);
    return {
      forward: `look for duplicate (${step.columns.join(', ')}) first (fail naming up to 5 of them, nothing locked); CREATE UNIQUE INDEX CONCURRENTLY ${name}; ADD CONSTRAINT ${name} UNIQUE USING INDEX ${name}`, // lint-layers: ok (plan text)
      rollback: `DROP CONSTRAINT ${name} (and its index; DROP INDEX CONCURRENTLY if it was never attached)`,
      lock: 'SHARE UPDATE EXCLUSIVE for the concurrent build (reads and writes go on); ACCESS EXCLUSIVE (catalog only, instant) to attach',
      online: true,
    };
  },
};
