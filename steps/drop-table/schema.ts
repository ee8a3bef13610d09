import { z } from 'zod';
import { stepSchema } from '../../spec/fields';

export const dropTableStep = stepSchema('dropTable', {});
export type DropTableStep = z.infer<typeof dropTableStep>;
