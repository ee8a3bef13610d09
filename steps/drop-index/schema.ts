import type { z } from 'zod';
import { stepSchema, identifier } from '../../core/common/fields';

export const dropIndexStep = stepSchema('dropIndex', { name: identifier('name') });
export type DropIndexStep = z.infer<typeof dropIndexStep>;
