import { z } from 'zod';
import { stepSchema, duration } from '../../core/common/fields';

export const approvalStep = stepSchema('approval', {
  timeout: duration.default('24h'),
  onTimeout: z.enum(['rollback', 'fail']).default('rollback'),
});
export type ApprovalStep = z.infer<typeof approvalStep>;
