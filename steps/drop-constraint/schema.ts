import type { z } from 'zod';
import { stepSchema, identifier } from '../../core/common/fields';

export const dropConstraintStep = stepSchema('dropConstraint', { name: identifier('name') });
export type DropConstraintStep = z.infer<typeof dropConstraintStep>;
