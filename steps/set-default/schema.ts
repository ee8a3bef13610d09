import { z } from 'zod';
import { stepSchema, identifier, expression } from '../../spec/fields';

export const setDefaultStep = stepSchema('setDefault', { column: identifier('column'), default: expression('default') });
export type SetDefaultStep = z.infer<typeof setDefaultStep>;
