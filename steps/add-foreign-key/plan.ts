import type { StepKindModule } from '../types';
import { addForeignKeyStep } from './schema';
import { foreignKeyNameOf, referencingIndexNameOf } from '../../core/rollout/object-names';

/** A foreign key added NOT VALID (instant), validated in its own transaction while writes go on. */
export const addForeignKey: StepKindModule<typeof addForeignKeyStep> = {
  kind: 'addForeignKey',
  schema: addForeignKeyStep,
  role: 'schema',
  check: (step) =>
    step.columns.length !== step.references.columns.length
      ? [
          {
            path: ['references', 'columns'],
            message: `references.columns has ${step.references.columns.length} column(s) but columns has ${step.columns.length}; they pair up one to one`,
          },
        ]
      : [],
  describe: (step, ctx) => {
    const name = foreignKeyNameOf(step, ctx.table);
    const index = referencingIndexNameOf(step, ctx.table);
    return {
      forward:
        `ADD CONSTRAINT ${name} FOREIGN KEY (${step.columns.join(', ')}) REFERENCES ${step.references.table} (${step.references.columns.join(', ')}) MATCH ${step.match.toUpperCase()} ON DELETE ${step.onDelete.toUpperCase()} ON UPDATE ${step.onUpdate.toUpperCase()} NOT VALID, ` +
        `then VALIDATE CONSTRAINT in its own transaction` +
        (step.referencingIndex === 'create'
          ? `; CREATE INDEX CONCURRENTLY ${index} (${step.columns.join(', ')}) if no index leads with them` // lint-layers: ok (plan text)
          : step.referencingIndex === 'warn'
            ? '; warns when no index leads with the referencing columns'
            : ''),
      rollback: `DROP CONSTRAINT ${name}${step.referencingIndex === 'create' ? `; DROP INDEX CONCURRENTLY ${index} if this step built it` : ''}`,
      lock: 'SHARE ROW EXCLUSIVE on both tables (catalog only, instant); SHARE UPDATE EXCLUSIVE while VALIDATE scans (reads and writes go on)',
      online: true,
    };
  },
};
