import { z } from 'zod';
import { stepBase, backfillFields, tableName } from '../../spec/fields';

export const backfillStep = z
  .object({
    kind: z.literal('backfill'),
    ...stepBase,
    ...backfillFields,
    name: backfillFields.name.optional(),
    table: tableName.optional(),
    key: backfillFields.key.default('id'),
    chunkSize: backfillFields.chunkSize.default(5000),
  })
  .strict();
export type BackfillStep = z.infer<typeof backfillStep>;
