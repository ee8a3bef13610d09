import { z } from 'zod';
import { stepBase, identifier } from '../../spec/fields';

export const dropIndexStep = z.object({ kind: z.literal('dropIndex'), ...stepBase, name: identifier('name') }).strict();
export type DropIndexStep = z.infer<typeof dropIndexStep>;
