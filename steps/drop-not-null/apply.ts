import type { StepActions } from '../types';
import type { DropNotNullStep } from './schema';
import {
  tableColumns,
  addCheckNotValid,
  validateConstraint,
  dropConstraint,
  setColumnNotNull,
  dropColumnNotNull,
  constraintExists,
} from '../../db/rollout/ddl';
import { notNullCheckName, notNullCheckExpression } from '../set-not-null/sql';
import { pgMessage } from '../../db/errors';

export const dropNotNullActions: StepActions<DropNotNullStep> = {
  phases: [
    {
      name: 'apply',
      doing: 'DROP NOT NULL',
      transactional: true,
      async run(ctx) {
        const col = (await tableColumns(ctx.db, ctx.table)).find((c) => c.name === ctx.step.column);
        if (!col) throw ctx.fail('column', `${ctx.table} has no column "${ctx.step.column}"; fix the step's column`);
        if (col.notNull) await dropColumnNotNull(ctx.db, ctx.table, ctx.step.column);
        return { wasNotNull: col.notNull };
      },
    },
  ],
  // each statement in its own transaction: the validating scan must not run under ADD CONSTRAINT's ACCESS EXCLUSIVE
  isRevertOutsideTransaction: true,
  async revert(ctx) {
    if (ctx.detail.wasNotNull !== true) return;
    const { db, table } = ctx;
    const column = ctx.step.column;
    if ((await tableColumns(db, table)).find((c) => c.name === column)?.notNull) return;
    const check = notNullCheckName(table, column);
    if (!(await constraintExists(db, table, check))) await addCheckNotValid(db, table, check, notNullCheckExpression(column));
    try {
      await validateConstraint(db, table, check);
    } catch (err) {
      if ((err as { code?: string })?.code !== '23514') throw err;
      // NULLs written while NOT NULL was off: leave no stray check behind; the rollback retries (with backoff) until they are fixed
      await dropConstraint(db, table, check);
      throw new Error(
        `reverting step "${ctx.stepId}": ${table}.${column} got NULLs while it was nullable, so NOT NULL cannot come back; fill them in and the rollback goes on (${pgMessage(err)})`,
      );
    }
    await setColumnNotNull(db, table, column);
    await dropConstraint(db, table, check);
  },
};
