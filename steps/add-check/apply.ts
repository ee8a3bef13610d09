import type { StepActions } from '../types';
import type { AddCheckStep } from './schema';
import { addCheckNotValid, validateConstraint, dropConstraint } from '../../db/rollout/ddl';
import { failure, pgMessage } from '../../db/errors';
import { FailureType } from '../../core/common/failures';

/** ADD CONSTRAINT ... NOT VALID (an instant), then VALIDATE in its own transaction (a scan that lets writes through). */
export const addCheckActions: StepActions<AddCheckStep> = {
  phases: [
    {
      name: 'not_valid',
      doing: 'ADD CONSTRAINT ... NOT VALID',
      transactional: true,
      async run(ctx) {
        await addCheckNotValid(ctx.db, ctx.table, ctx.step.name, ctx.step.expression);
        return { constraint: ctx.step.name };
      },
    },
    {
      name: 'validated',
      doing: 'VALIDATE CONSTRAINT',
      transactional: true,
      async run(ctx) {
        await validateConstraint(ctx.db, ctx.table, ctx.step.name);
      },
      async recover(err, ctx) {
        if ((err as { code?: string })?.code !== '23514') return undefined;
        await dropConstraint(ctx.db, ctx.table, ctx.step.name);
        return failure(
          FailureType.StepValidationFailed,
          `step "${ctx.stepId}": existing rows of ${ctx.table} violate CHECK (${ctx.step.expression}); fix the data or the expression (${pgMessage(err)})`,
          { stepId: ctx.stepId },
        );
      },
    },
  ],
  async revert(ctx) {
    await dropConstraint(ctx.db, ctx.table, ctx.step.name);
  },
};
