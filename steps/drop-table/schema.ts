import { z } from 'zod';
import { stepBase } from '../../spec/fields';

export const dropTableStep = z.object({ kind: z.literal('dropTable'), ...stepBase }).strict();
export type DropTableStep = z.infer<typeof dropTableStep>;
