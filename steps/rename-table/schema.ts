import { z } from 'zod';
import { stepBase, identifier } from '../../spec/fields';

export const renameTableStep = z
  .object({
    kind: z.literal('renameTable'),
    ...stepBase,
    /** The new name, in the same schema. */
    to: identifier('to'),
  })
  .strict();
export type RenameTableStep = z.infer<typeof renameTableStep>;
