import { z } from 'zod';
import { stepSchema, identifier, columnNames } from '../../spec/fields';
import { derivedName } from '../create-index/schema';

export const addUniqueStep = stepSchema('addUnique', {
  /** The constraint's name, and its index's; default <table>_<columns>_key. */
  name: identifier('name').optional(),
  columns: columnNames('columns', 'the columns that must be unique together'),
});
export type AddUniqueStep = z.infer<typeof addUniqueStep>;

export function uniqueNameOf(step: Pick<AddUniqueStep, 'name' | 'columns'>, table: string): string {
  return step.name ?? derivedName(table, step.columns, 'key');
}
