import { z } from 'zod';
import { stepSchema, identifier, sqlType, expression, backfillTuning } from '../../core/common/fields';

export const addColumnStep = stepSchema('addColumn', {
  column: identifier('column'),
  type: sqlType,
  up: expression('up'),
  default: z.string().optional(),
  backfill: z.object(backfillTuning).strict().optional(),
});
export type AddColumnStep = z.infer<typeof addColumnStep>;
