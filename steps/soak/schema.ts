import { z } from 'zod';
import { stepSchema, gateCheck, onFailure, duration } from '../../core/common/fields';

export const soakStep = stepSchema('soak', {
  duration,
  every: duration.default('30s'),
  checks: z.array(gateCheck).min(1, 'a soak needs at least one check'),
  onFailure,
});
export type SoakStep = z.infer<typeof soakStep>;
