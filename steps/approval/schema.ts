import { z } from 'zod';
import { stepBase, duration } from '../../spec/fields';

export const approvalStep = z
  .object({
    kind: z.literal('approval'),
    ...stepBase,
    timeout: duration.default('24h'),
    onTimeout: z.enum(['rollback', 'fail']).default('rollback'),
  })
  .strict();
export type ApprovalStep = z.infer<typeof approvalStep>;
