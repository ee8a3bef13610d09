import { z } from 'zod';
import { stepSchema, gateCheck, onFailure } from '../../core/common/fields';

export const gateStep = stepSchema('gate', { checks: z.array(gateCheck).min(1, 'a gate needs at least one check'), onFailure });
export type GateStep = z.infer<typeof gateStep>;
