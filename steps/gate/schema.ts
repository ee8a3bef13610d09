import { z } from 'zod';
import { stepBase, gateCheck, onFailure } from '../../spec/fields';

export const gateStep = z
  .object({ kind: z.literal('gate'), ...stepBase, checks: z.array(gateCheck).min(1, 'a gate needs at least one check'), onFailure })
  .strict();
export type GateStep = z.infer<typeof gateStep>;
