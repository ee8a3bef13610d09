import type { z } from 'zod';
import { stepSchema, identifier, columnNames } from '../../core/common/fields';

export const addUniqueStep = stepSchema('addUnique', {
  /** The constraint's name, and its index's; default <table>_<columns>_key. */
  name: identifier('name').optional(),
  columns: columnNames('columns', 'the columns that must be unique together'),
});
export type AddUniqueStep = z.infer<typeof addUniqueStep>;
