import type { StepActions } from '../types';
import { newColumnOf, AlterColumnStep } from './schema';
import { tableColumns, dropColumn, renameColumn } from '../../db/ddl';
import { dropStepTrigger } from '../../db/triggers';
import { triggerOf, checkExpression, columnBackfill } from '../row-sync';
import { addSyncedColumn } from './sql';

export const alterColumnActions: StepActions<AlterColumnStep> = {
  backfills: (ctx) => [columnBackfill(ctx, newColumnOf(ctx.step))],
  phases: [
    {
      name: 'apply',
      transactional: true,
      async run(ctx) {
        const { step, table } = ctx;
        const newColumn = newColumnOf(step);
        const current = (await tableColumns(ctx.db, table)).find((c) => c.name === step.column);
        if (!current) throw ctx.fail('column', `${table} has no column "${step.column}"; fix the step's column`);
        const type = step.newType ?? current.type;
        const trigger = triggerOf(ctx, 1);
        await checkExpression(ctx, 'up', step.up, type);
        await addSyncedColumn(ctx.db, { table, column: step.column, newColumn, type, up: step.up, down: step.down, trigger });
        // `down` reads the new column, so it can only be checked once that exists
        await checkExpression(ctx, 'down', step.down, current.type);
        return { column: step.column, newColumn, type, trigger, function: trigger };
      },
    },
  ],
  async revert(ctx) {
    await dropStepTrigger(ctx.db, ctx.table, triggerOf(ctx, 1));
    await dropColumn(ctx.db, ctx.table, newColumnOf(ctx.step));
  },
  contract: {
    async release(ctx) {
      const trigger = triggerOf(ctx, 1);
      await dropStepTrigger(ctx.db, ctx.table, trigger);
      ctx.report('droppedTriggers', trigger);
    },
    // without newName the new column takes the old one's name; with it, the old one goes only if `drops` lists it
    async complete(ctx) {
      const { step } = ctx;
      if (step.newName !== undefined) return;
      const from = newColumnOf(step);
      if (!ctx.columns.has(from)) return;
      if (ctx.columns.has(step.column)) {
        await dropColumn(ctx.db, ctx.table, step.column);
        ctx.columns.delete(step.column);
        ctx.report('droppedColumns', step.column);
      }
      await renameColumn(ctx.db, ctx.table, from, step.column);
      ctx.columns.delete(from);
      ctx.columns.add(step.column);
      ctx.report('renamed', `${from} -> ${step.column}`);
    },
  },
};
