import { z } from 'zod';
import { stepSchema, identifier, sqlType, expression, backfillTuning } from '../../core/common/fields';

/** The object schema (one option of the step union); `check` in plan.ts adds the rule that needs both fields. */
export const alterColumnStep = stepSchema('alterColumn', {
  column: identifier('column'),
  newName: identifier('newName').optional(),
  newType: sqlType.optional(),
  up: expression('up'),
  down: expression('down'),
  backfill: z.object(backfillTuning).strict().optional(),
});
export type AlterColumnStep = z.infer<typeof alterColumnStep>;
