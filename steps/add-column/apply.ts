import { inTransaction, type StepActions } from '../types';
import type { AddColumnStep } from './schema';
import { dropColumn } from '../../db/rollout/ddl';
import { dropStepTrigger } from '../../db/rollout/triggers';
import { triggerOf, checkExpression, columnBackfill } from '../row-sync';
import { addComputedColumn } from './sql';

export const addColumnActions: StepActions<AddColumnStep> = {
  backfills: (ctx) => [columnBackfill(ctx, ctx.step.column)],
  phases: [
    inTransaction('apply', async (ctx) => {
      const { step, table } = ctx;
      const trigger = triggerOf(ctx, 2);
      await checkExpression(ctx, 'up', step.up, step.type);
      await addComputedColumn(ctx.db, { table, column: step.column, type: step.type, default: step.default, up: step.up, trigger });
      return { column: step.column, trigger, function: trigger };
    }),
  ],
  async revert(ctx) {
    await dropStepTrigger(ctx.db, ctx.table, triggerOf(ctx, 2));
    await dropColumn(ctx.db, ctx.table, ctx.step.column);
  },
  contract: {
    // the column stays; only the dual write goes
    async release(ctx) {
      const trigger = triggerOf(ctx, 2);
      await dropStepTrigger(ctx.db, ctx.table, trigger);
      ctx.report('droppedTriggers', trigger);
    },
  },
};
