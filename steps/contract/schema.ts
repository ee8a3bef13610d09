import { z } from 'zod';
import { stepSchema, identifier } from '../../core/common/fields';

export const contractStep = stepSchema('contract', { drops: z.array(identifier('drops[]')).optional() });
export type ContractStep = z.infer<typeof contractStep>;
