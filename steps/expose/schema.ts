import { z } from 'zod';
import { stepBase } from '../../spec/fields';

export const exposeStep = z
  .object({
    kind: z.literal('expose'),
    ...stepBase,
    version: z.number().int().min(1),
    /** Percentage of consumers the flag routes to this version (canary); 100 when absent. */
    percent: z.number().int().min(0).max(100).default(100),
  })
  .strict();
export type ExposeStep = z.infer<typeof exposeStep>;
