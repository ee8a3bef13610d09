import { z } from 'zod';
import { stepSchema, identifier, tableName, columnNames } from '../../core/common/fields';

export const FK_ACTIONS = ['no action', 'restrict', 'cascade', 'set null', 'set default'] as const;
const fkAction = (what: string) => z.enum(FK_ACTIONS, { errorMap: () => ({ message: `${what} must be one of ${FK_ACTIONS.join(', ')}` }) });

export const addForeignKeyStep = stepSchema('addForeignKey', {
  /** Default <table>_<columns>_fkey. */
  name: identifier('name').optional(),
  columns: columnNames('columns', 'the referencing columns of this table'),
  references: z.object({ table: tableName, columns: columnNames('references.columns') }).strict(),
  onDelete: fkAction('onDelete').default('no action'),
  onUpdate: fkAction('onUpdate').default('no action'),
  match: z.enum(['simple', 'full'], { errorMap: () => ({ message: 'match must be simple or full' }) }).default('simple'),
  /** No index leading with the referencing columns (deletes on the referenced table scan this one): warn in the step's detail, create one concurrently, or ignore. */
  referencingIndex: z
    .enum(['warn', 'create', 'ignore'], { errorMap: () => ({ message: 'referencingIndex must be warn, create or ignore' }) })
    .default('warn'),
});
export type AddForeignKeyStep = z.infer<typeof addForeignKeyStep>;
