import { z } from 'zod';
import { stepSchema, backfillFields, tableName } from '../../core/common/fields';

export const backfillStep = stepSchema('backfill', {
  ...backfillFields,
  name: backfillFields.name.optional(),
  table: tableName.optional(),
  key: backfillFields.key.default('id'),
  chunkSize: backfillFields.chunkSize.default(5000),
});
export type BackfillStep = z.infer<typeof backfillStep>;
