import { z } from 'zod';
import { stepBase, identifier } from '../../spec/fields';

export const dropNotNullStep = z.object({ kind: z.literal('dropNotNull'), ...stepBase, column: identifier('column') }).strict();
export type DropNotNullStep = z.infer<typeof dropNotNullStep>;
