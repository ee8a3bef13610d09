import { z } from 'zod';
import { stepSchema, identifier, expression } from '../../core/common/fields';

export const INDEX_METHODS = ['btree', 'gin', 'gist', 'brin', 'hash'] as const;

/** Storage parameters: `with: {fillfactor: 70, fastupdate: false}`; names are plain words, values numbers, booleans or words. */
export const storageParameters = z.record(
  z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'with: parameter names are lower-case words, e.g. fillfactor'),
  z.union([z.number(), z.boolean(), z.string().regex(/^[A-Za-z0-9_.-]{1,63}$/, 'with: a value is a number, true/false or a plain word')]),
);

export const createIndexStep = stepSchema('createIndex', {
  /** Default: <table>_<columns>_idx (or _expr_<hash>_idx), at most 63 characters. */
  name: identifier('name').optional(),
  unique: z.boolean().optional(),
  method: z.enum(INDEX_METHODS, { errorMap: () => ({ message: `method must be one of ${INDEX_METHODS.join(', ')}` }) }).default('btree'),
  columns: z.array(identifier('columns[]')).min(1, 'columns is empty: name at least one column, or use expressions').optional(),
  expressions: z.array(expression('expressions[]')).min(1, 'expressions is empty').optional(),
  include: z.array(identifier('include[]')).min(1).optional(),
  where: expression('where').optional(),
  with: storageParameters.optional(),
});
export type CreateIndexStep = z.infer<typeof createIndexStep>;
