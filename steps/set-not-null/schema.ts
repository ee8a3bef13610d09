import { z } from 'zod';
import { stepBase, identifier } from '../../spec/fields';

export const setNotNullStep = z.object({ kind: z.literal('setNotNull'), ...stepBase, column: identifier('column') }).strict();
export type SetNotNullStep = z.infer<typeof setNotNullStep>;
