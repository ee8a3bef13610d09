import { z } from 'zod';
import { stepBase, identifier } from '../../spec/fields';

export const contractStep = z
  .object({ kind: z.literal('contract'), ...stepBase, drops: z.array(identifier('drops[]')).optional() })
  .strict();
export type ContractStep = z.infer<typeof contractStep>;
