import type { StepKindModule, StepProblem } from '../types';
import { oneLine, hasSecondStatement } from '../../core/common/text';
import type { SqlStep } from './schema';
import { sqlStep } from './schema';

/** The operator's own statements, with their own revert; in the step's transaction, or outside one guarded by `check`; `onContract` at contract. */
export const sql: StepKindModule<typeof sqlStep> = {
  kind: 'sql',
  schema: sqlStep,
  role: 'schema',
  check: checkSql,
  describe: (step) => {
    const outside = step.transaction === false;
    const forward = [
      step.apply !== undefined ? `run${outside ? ' outside a transaction, unless check says it ran' : ''}: ${oneLine(step.apply)}` : null,
      step.onContract !== undefined ? `at contract run: ${oneLine(step.onContract)}` : null,
    ].filter(Boolean);
    return {
      forward: forward.join('; '),
      rollback:
        step.revert !== undefined
          ? `run${outside ? ' outside a transaction, if check says apply ran' : ''}: ${oneLine(step.revert)}`
          : 'nothing to undo (onContract never runs before contract)',
      lock: outside
        ? 'whatever the statement takes, each statement on its own (under lock_timeout)'
        : 'whatever the statements take, held until they commit (under lock_timeout)',
      online: false,
    };
  },
};

function checkSql(step: SqlStep): StepProblem[] {
  const problems: StepProblem[] = [];
  const add = (field: string, message: string) => problems.push({ path: [field], message });
  if (step.apply === undefined && step.onContract === undefined)
    add('apply', 'apply is required (or onContract, for SQL that runs only at contract)');
  if (step.apply !== undefined && step.revert === undefined) add('revert', 'revert is required: a sql step must say how to undo it');
  if (step.apply === undefined && step.revert !== undefined)
    add('revert', 'revert without apply: there is nothing to undo; remove it (onContract runs at contract, which is never rolled back)');
  if (step.transaction === false) {
    if (step.apply === undefined) add('transaction', 'transaction: false is about apply, and there is none; remove it');
    if (step.check === undefined)
      add(
        'check',
        'check is required with transaction: false: a query returning true once apply has run, so a retried step runs apply exactly once (e.g. "select to_regclass(\'public.orders_qty_idx\') IS NOT NULL")',
      );
    for (const field of ['apply', 'revert'] as const) {
      const text = step[field];
      if (text !== undefined && hasSecondStatement(text))
        add(
          field,
          `${field} must be one statement with transaction: false (several would run as one implicit transaction); use one sql step per statement`,
        );
    }
  } else if (step.check !== undefined) {
    add('check', 'check is only for transaction: false (a step in a transaction is exactly-once without it); remove it');
  }
  return problems;
}
