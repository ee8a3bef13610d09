import { z } from 'zod';
import { stepBase, identifier } from '../../spec/fields';

export const renameConstraintStep = z
  .object({ kind: z.literal('renameConstraint'), ...stepBase, from: identifier('from'), to: identifier('to') })
  .strict();
export type RenameConstraintStep = z.infer<typeof renameConstraintStep>;
