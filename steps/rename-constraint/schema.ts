import type { z } from 'zod';
import { stepSchema, identifier } from '../../core/common/fields';

export const renameConstraintStep = stepSchema('renameConstraint', { from: identifier('from'), to: identifier('to') });
export type RenameConstraintStep = z.infer<typeof renameConstraintStep>;
