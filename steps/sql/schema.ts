import { z } from 'zod';
import { stepBase } from '../../spec/fields';

export const sqlStep = z
  .object({
    kind: z.literal('sql'),
    ...stepBase,
    apply: z.string({ required_error: 'apply is required' }).min(1),
    revert: z.string({ required_error: 'revert is required: a sql step must say how to undo it' }).min(1, 'revert is empty: a sql step must say how to undo it'),
  })
  .strict();
export type SqlStep = z.infer<typeof sqlStep>;
