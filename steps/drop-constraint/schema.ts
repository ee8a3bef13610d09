import { z } from 'zod';
import { stepSchema, identifier } from '../../spec/fields';

export const dropConstraintStep = stepSchema('dropConstraint', { name: identifier('name') });
export type DropConstraintStep = z.infer<typeof dropConstraintStep>;
