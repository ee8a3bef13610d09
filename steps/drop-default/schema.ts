import { z } from 'zod';
import { stepBase, identifier } from '../../spec/fields';

export const dropDefaultStep = z.object({ kind: z.literal('dropDefault'), ...stepBase, column: identifier('column') }).strict();
export type DropDefaultStep = z.infer<typeof dropDefaultStep>;
