import type { StepKindModule, StepProblem } from '../types';
import type { CreateTableStep } from './schema';
import { createTableStep } from './schema';

/** A new table; its revert drops it only while it is still what stagefill created. */
export const createTable: StepKindModule<typeof createTableStep> = {
  kind: 'createTable',
  schema: createTableStep,
  role: 'schema',
  check: checkCreateTable,
  describe: (step, ctx) => {
    const parts = [
      `${step.columns.length} column${step.columns.length === 1 ? '' : 's'} (${step.columns.map((c) => c.name).join(', ')})`,
      step.primaryKey ? `PRIMARY KEY (${step.primaryKey.join(', ')})` : null,
      step.unique?.length ? `${step.unique.length} UNIQUE` : null,
      step.checks?.length ? `${step.checks.length} CHECK` : null,
      step.indexes?.length ? `${step.indexes.length} index${step.indexes.length === 1 ? '' : 'es'}` : null,
    ].filter(Boolean);
    const refs = [...new Set(step.columns.flatMap((c) => (c.references ? [c.references.table] : [])))];
    return {
      forward: `create table ${ctx.table}: ${parts.join(', ')}; its catalog is recorded right after`,
      rollback: `drop ${ctx.table} if it is still what stagefill created${step.revertDropsRows ? '' : ' and holds no rows'}; otherwise hold the rollback and say why`,
      lock: `none on existing tables${refs.length ? ` but SHARE ROW EXCLUSIVE on ${refs.join(', ')} (foreign key, instant)` : ''}; the new table is empty, so its indexes build at once`,
      online: true,
    };
  },
};

/** Columns named by keys, constraints and indexes must be columns of the table. */
function checkCreateTable(step: CreateTableStep): StepProblem[] {
  const problems: StepProblem[] = [];
  const names = step.columns.map((c) => c.name);
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) problems.push({ path: ['columns', i, 'name'], message: `column ${n} is listed twice` });
  });
  const known = new Set(names);
  const must = (cols: string[], path: (string | number)[]) =>
    cols.forEach((c, i) => {
      if (!known.has(c)) problems.push({ path: [...path, i], message: `${c} is not one of the table's columns (${names.join(', ')})` });
    });
  must(step.primaryKey ?? [], ['primaryKey']);
  step.unique?.forEach((u, i) => must(u.columns, ['unique', i, 'columns']));
  step.indexes?.forEach((x, i) => must(x.columns, ['indexes', i, 'columns']));
  return problems;
}
