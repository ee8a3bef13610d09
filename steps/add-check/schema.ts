import type { z } from 'zod';
import { stepSchema, identifier, expression } from '../../core/common/fields';

export const addCheckStep = stepSchema('addCheck', { name: identifier('name'), expression: expression('expression') });
export type AddCheckStep = z.infer<typeof addCheckStep>;
