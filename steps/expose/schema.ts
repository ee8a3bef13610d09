import { z } from 'zod';
import { stepSchema } from '../../core/common/fields';

export const exposeStep = stepSchema('expose', {
  version: z.number().int().min(1),
  /** Percentage of consumers the flag routes to this version (canary); 100 when absent. */
  percent: z.number().int().min(0).max(100).default(100),
});
export type ExposeStep = z.infer<typeof exposeStep>;
