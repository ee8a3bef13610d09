import type { z } from 'zod';
import { stepSchema, identifier } from '../../core/common/fields';

export const renameTableStep = stepSchema('renameTable', {
  /** The new name, in the same schema. */
  to: identifier('to'),
});
export type RenameTableStep = z.infer<typeof renameTableStep>;
