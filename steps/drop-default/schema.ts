import type { z } from 'zod';
import { stepSchema, identifier } from '../../core/common/fields';

export const dropDefaultStep = stepSchema('dropDefault', { column: identifier('column') });
export type DropDefaultStep = z.infer<typeof dropDefaultStep>;
