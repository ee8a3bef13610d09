import { z } from 'zod';
import { stepBase, identifier, expression } from '../../spec/fields';

export const addCheckStep = z
  .object({ kind: z.literal('addCheck'), ...stepBase, name: identifier('name'), expression: expression('expression') })
  .strict();
export type AddCheckStep = z.infer<typeof addCheckStep>;
