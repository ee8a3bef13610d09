import { parseSpec, SpecError } from '../../steps/spec';

/** A backfill spec that parses: the fixture the spec tests vary one field of. */
export const backfillSpec = {
  kind: 'backfill',
  name: 'orders-total',
  table: 'public.orders',
  key: 'id',
  chunkSize: 1000,
  parallelism: 2,
  transform: 'UPDATE public.orders SET total = qty * price WHERE id >= :lo AND id < :hi',
};

/** The problems of a spec, as `path: message` lines; [] when it parses. */
export function specProblems(input: unknown): string[] {
  try {
    parseSpec(input);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(SpecError);
    return (err as SpecError).issues.map((i) => `${i.path}: ${i.message}`);
  }
}

/** The problems of a spec that must be rejected; throws when it parses. */
export function rejection(input: unknown): string[] {
  const problems = specProblems(input);
  if (problems.length === 0) throw new Error('expected the spec to be rejected');
  return problems;
}
