import { inTransaction, type StepActions } from '../types';
import type { SqlStep } from './schema';
import { runUserStatements } from '../../db/rollout/ddl';
import { userCheck } from './sql';

const isOutside = (step: SqlStep) => step.transaction === false;

/**
 * In a transaction (default): `apply` in the step's transaction, `revert` in
 * the revert's. With `transaction: false`: the `before` phase records in the
 * step's row whether `check` already said done (then the step did not do it,
 * and its revert must not undo it); `apply` runs on a plain connection only
 * while `check` says not done, so a retry after a crash between the statement
 * and its record does not run it twice; `revert` runs only while `check` says
 * done. `onContract` runs in the contract step's transaction.
 */
export const sqlActions: StepActions<SqlStep> = {
  phases: [
    inTransaction('apply', async (ctx) => {
      const { step, db } = ctx;
      if (step.apply === undefined) return {};
      if (!isOutside(step)) {
        await runUserStatements(db, step.apply);
        return {};
      }
      return { wasDoneBefore: await userCheck(db, step.check!) };
    }),
    {
      name: 'apply-outside',
      doing: 'apply (outside a transaction)',
      transactional: false,
      async run(ctx) {
        const { step, db } = ctx;
        if (!isOutside(step) || step.apply === undefined) return;
        if (await userCheck(db, step.check!)) return { ran: false };
        await runUserStatements(db, step.apply);
        return { ran: true };
      },
    },
  ],
  isRevertOutsideTransaction: isOutside,
  async revert(ctx) {
    const { step, db } = ctx;
    if (step.revert === undefined) return;
    if (!isOutside(step)) {
      await runUserStatements(db, step.revert);
      return;
    }
    // what was there before the step is not the step's to undo
    if (ctx.detail.wasDoneBefore === true) return;
    if (await userCheck(db, step.check!)) await runUserStatements(db, step.revert);
  },
  contract: {
    async complete(ctx) {
      if (ctx.step.onContract === undefined) return;
      await runUserStatements(ctx.db, ctx.step.onContract);
      ctx.report('ranSql', ctx.stepId);
    },
  },
};
