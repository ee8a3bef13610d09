import { z } from 'zod';
import { stepBase, gateCheck, onFailure, duration } from '../../spec/fields';

export const soakStep = z
  .object({
    kind: z.literal('soak'),
    ...stepBase,
    duration,
    every: duration.default('30s'),
    checks: z.array(gateCheck).min(1, 'a soak needs at least one check'),
    onFailure,
  })
  .strict();
export type SoakStep = z.infer<typeof soakStep>;
