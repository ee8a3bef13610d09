import type { z } from 'zod';
import { stepSchema, backfillFields, tableName } from '../../core/common/fields';
import { THROTTLE_DEFAULTS } from '../../core/common/throttle-limits';

export const backfillStep = stepSchema('backfill', {
  ...backfillFields,
  name: backfillFields.name.optional(),
  table: tableName.optional(),
  key: backfillFields.key.default('id'),
  chunkSize: backfillFields.chunkSize.default(THROTTLE_DEFAULTS.chunkSize),
});
export type BackfillStep = z.infer<typeof backfillStep>;
