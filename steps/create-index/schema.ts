import { z } from 'zod';
import { stepSchema, identifier, expression } from '../../spec/fields';

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

/** FNV-1a, 8 hex digits: a stable short tag for derived names (pure, no node:crypto in the workflow bundle). */
export function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * A derived object name `<table>_<parts>_<suffix>` like Postgres' own, cut to
 * 63 characters with a hash of the full name when it is longer, so two long
 * names do not collide on their common prefix.
 */
export function derivedName(table: string, parts: string[], suffix: string): string {
  const bare = table.includes('.') ? table.slice(table.indexOf('.') + 1) : table;
  const full = `${bare}_${parts.join('_')}_${suffix}`;
  if (full.length <= 63) return full;
  return `${full.slice(0, 63 - suffix.length - 10)}_${shortHash(full)}_${suffix}`;
}

export function indexNameOf(step: Pick<CreateIndexStep, 'name' | 'columns' | 'expressions'>, table: string): string {
  if (step.name) return step.name;
  const parts = [...(step.columns ?? []), ...(step.expressions?.length ? [`expr_${shortHash(step.expressions.join('\0'))}`] : [])];
  return derivedName(table, parts, 'idx');
}
