import type { z } from 'zod';
import { stepSchema, identifier } from '../../core/common/fields';

export const setNotNullStep = stepSchema('setNotNull', { column: identifier('column') });
export type SetNotNullStep = z.infer<typeof setNotNullStep>;
