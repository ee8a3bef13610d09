import type { z } from 'zod';
import { stepSchema, identifier } from '../../core/common/fields';

export const dropNotNullStep = stepSchema('dropNotNull', { column: identifier('column') });
export type DropNotNullStep = z.infer<typeof dropNotNullStep>;
