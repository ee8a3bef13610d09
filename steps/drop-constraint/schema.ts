import { z } from 'zod';
import { stepBase, identifier } from '../../spec/fields';

export const dropConstraintStep = z.object({ kind: z.literal('dropConstraint'), ...stepBase, name: identifier('name') }).strict();
export type DropConstraintStep = z.infer<typeof dropConstraintStep>;
