import type { z } from 'zod';
import { stepSchema } from '../../core/common/fields';

export const dropTableStep = stepSchema('dropTable', {});
export type DropTableStep = z.infer<typeof dropTableStep>;
