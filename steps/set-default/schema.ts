import type { z } from 'zod';
import { stepSchema, identifier, expression } from '../../core/common/fields';

export const setDefaultStep = stepSchema('setDefault', { column: identifier('column'), default: expression('default') });
export type SetDefaultStep = z.infer<typeof setDefaultStep>;
