import type { StepActions } from '../types';
import type { SetNotNullStep } from './schema';
import {
  tableColumns,
  addCheckNotValid,
  validateConstraint,
  dropConstraint,
  setColumnNotNull,
  dropColumnNotNull,
} from '../../db/rollout/ddl';
import { failure, pgMessage } from '../../db/errors';
import { FailureType } from '../../core/common/failures';
import { notNullCheckName, notNullCheckExpression } from './sql';

interface Detail {
  constraint: string;
  /** The column was NOT NULL already: nothing to do, and its revert must leave it so. */
  wasNotNull: boolean;
}

/**
 * Three phases, each its own transaction recorded with its DDL: ADD CHECK
 * (col IS NOT NULL) NOT VALID (an instant), VALIDATE (a scan that lets writes
 * through), SET NOT NULL (catalog-only, given the valid check) and drop the check.
 */
export const setNotNullActions: StepActions<SetNotNullStep> = {
  phases: [
    {
      name: 'not_valid',
      doing: 'ADD CONSTRAINT ... NOT VALID',
      transactional: true,
      async run(ctx) {
        const { step, table } = ctx;
        const col = (await tableColumns(ctx.db, table)).find((c) => c.name === step.column);
        if (!col) throw ctx.fail('column', `${table} has no column "${step.column}"; fix the step's column`);
        const detail: Detail = { constraint: notNullCheckName(table, step.column), wasNotNull: col.notNull };
        if (!detail.wasNotNull) await addCheckNotValid(ctx.db, table, detail.constraint, notNullCheckExpression(step.column));
        return { ...detail };
      },
    },
    {
      name: 'validated',
      doing: 'VALIDATE CONSTRAINT',
      transactional: true,
      async run(ctx) {
        const d = ctx.detail as unknown as Detail;
        if (!d.wasNotNull) await validateConstraint(ctx.db, ctx.table, d.constraint);
      },
      // Existing rows break the rule: take the NOT VALID constraint away again so the step leaves nothing behind.
      async recover(err, ctx) {
        if ((err as { code?: string })?.code !== '23514') return undefined;
        await dropConstraint(ctx.db, ctx.table, (ctx.detail as unknown as Detail).constraint);
        return failure(
          FailureType.StepValidationFailed,
          `step "${ctx.stepId}": ${ctx.table}.${ctx.step.column} still has NULLs, so it cannot be made NOT NULL; backfill it first (${pgMessage(err)})`,
          { stepId: ctx.stepId },
        );
      },
    },
    {
      name: 'not_null',
      doing: 'SET NOT NULL',
      transactional: true,
      async run(ctx) {
        const d = ctx.detail as unknown as Detail;
        if (d.wasNotNull) return;
        await setColumnNotNull(ctx.db, ctx.table, ctx.step.column);
        await dropConstraint(ctx.db, ctx.table, d.constraint);
      },
    },
  ],
  async revert(ctx) {
    const d = ctx.detail as unknown as Detail;
    if (d.wasNotNull) return;
    if (ctx.effect === 'applied') await dropColumnNotNull(ctx.db, ctx.table, ctx.step.column);
    await dropConstraint(ctx.db, ctx.table, d.constraint ?? notNullCheckName(ctx.table, ctx.step.column));
  },
};
