import { z } from 'zod';
import { stepBase, identifier, expression } from '../../spec/fields';

export const setDefaultStep = z
  .object({ kind: z.literal('setDefault'), ...stepBase, column: identifier('column'), default: expression('default') })
  .strict();
export type SetDefaultStep = z.infer<typeof setDefaultStep>;
