import { z } from 'zod';
import { stepBase, identifier, sqlType, expression, backfillTuning } from '../../spec/fields';

export const addColumnStep = z
  .object({
    kind: z.literal('addColumn'),
    ...stepBase,
    column: identifier('column'),
    type: sqlType,
    up: expression('up'),
    default: z.string().optional(),
    backfill: z.object(backfillTuning).strict().optional(),
  })
  .strict();
export type AddColumnStep = z.infer<typeof addColumnStep>;
