import type { StepKindModule, StepProblem } from '../types';
import type { CreateIndexStep } from './schema';
import { createIndexStep } from './schema';
import { indexNameOf } from '../../core/rollout/object-names';

/** The key parts as the plan shows them: columns, then expressions. */
export function keyText(step: Pick<CreateIndexStep, 'columns' | 'expressions'>): string {
  return [...(step.columns ?? []), ...(step.expressions ?? []).map((e) => `(${e})`)].join(', ');
}

/** CREATE INDEX CONCURRENTLY: built while reads and writes go on; a failed or interrupted build's INVALID leftover is dropped before the retry. */
export const createIndex: StepKindModule<typeof createIndexStep> = {
  kind: 'createIndex',
  schema: createIndexStep,
  role: 'schema',
  check: checkIndexShape,
  describe: (step, ctx) => {
    const name = indexNameOf(step, ctx.table);
    const extras = [
      step.include?.length ? ` INCLUDE (${step.include.join(', ')})` : '',
      step.with
        ? ` WITH (${Object.entries(step.with)
            .map(([k, v]) => `${k} = ${v}`)
            .join(', ')})`
        : '',
      step.where ? ` WHERE ${step.where}` : '',
    ].join('');
    return {
      forward: `CREATE ${step.unique ? 'UNIQUE ' : ''}INDEX CONCURRENTLY ${name} USING ${step.method} (${keyText(step)})${extras}, outside a transaction; an INVALID leftover of an earlier attempt is dropped first`, // lint-layers: ok (plan text)
      rollback: `DROP INDEX CONCURRENTLY ${name}`,
      lock: 'SHARE UPDATE EXCLUSIVE for the whole concurrent build (reads and writes go on; other DDL waits)',
      online: true,
    };
  },
};

export function checkIndexShape(step: CreateIndexStep): StepProblem[] {
  const problems: StepProblem[] = [];
  if (!step.columns?.length && !step.expressions?.length)
    problems.push({ path: ['columns'], message: 'createIndex needs columns or expressions (or both): what the index is on' });
  if (step.unique && step.method !== 'btree')
    problems.push({ path: ['unique'], message: `only btree indexes can be unique; drop unique or use method btree (not ${step.method})` });
  if (step.include?.length && !['btree', 'gist'].includes(step.method))
    problems.push({ path: ['include'], message: `include works with btree and gist indexes, not ${step.method}` });
  if (step.method === 'hash' && (step.columns?.length ?? 0) + (step.expressions?.length ?? 0) > 1)
    problems.push({ path: ['columns'], message: 'a hash index has exactly one key column or expression' });
  return problems;
}
