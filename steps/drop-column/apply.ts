import { inTransaction, type StepActions } from '../types';
import type { DropColumnStep } from './schema';
import { dropColumn as dropColumnDdl } from '../../db/rollout/ddl';
import { dropStepTrigger } from '../../db/rollout/triggers';
import { triggerOf, checkExpression } from '../row-sync';
import { columnInfo, createDownTrigger, columnDependents } from './sql';
import { isViewSchemaOf } from '../../core/rollout/object-names';

/**
 * Apply: only the `down` trigger (the view shape hides the column, expose
 * does the rest). Contract: the trigger goes in the first pass, the column
 * in the second, once the legacy views that read it are gone.
 */
export const dropColumnActions: StepActions<DropColumnStep> = {
  phases: [
    inTransaction('apply', async (ctx) => {
      const { step, table, db } = ctx;
      const col = await columnInfo(db, table, step.column);
      if (!col) throw ctx.fail('column', `${table} has no column ${step.column}`);
      // refused now, not at contract, where nothing could be rolled back any more
      const blockers = await columnDependents(db, table, step.column, (s) => isViewSchemaOf(table, s));
      if (blockers.length)
        throw ctx.fail(
          'column',
          `${step.column} cannot be dropped at contract while ${blockers.join(', ')} depend${blockers.length === 1 ? 's' : ''} on it; drop or change ${blockers.length === 1 ? 'it' : 'them'} first (a rollout step can)`,
        );
      if (!step.down) {
        if (col.notNull && !col.hasValueSource) {
          throw ctx.fail(
            'down',
            `${step.column} is NOT NULL without a default, so every insert through the new version (which no longer sees it) would fail; give down: an expression over the row for the value it gets meanwhile`,
          );
        }
        return { column: step.column };
      }
      const trigger = triggerOf(ctx, 2);
      await checkExpression(ctx, 'down', step.down, col.type);
      await createDownTrigger(db, { table, column: step.column, down: step.down, trigger });
      return { column: step.column, trigger, function: trigger };
    }),
  ],
  async revert(ctx) {
    if (ctx.step.down) await dropStepTrigger(ctx.db, ctx.table, triggerOf(ctx, 2));
  },
  contract: {
    async release(ctx) {
      if (!ctx.step.down) return;
      const trigger = triggerOf(ctx, 2);
      await dropStepTrigger(ctx.db, ctx.table, trigger);
      ctx.report('droppedTriggers', trigger);
    },
    async complete(ctx) {
      if (!ctx.columns.has(ctx.step.column)) return;
      await dropColumnDdl(ctx.db, ctx.table, ctx.step.column);
      ctx.columns.delete(ctx.step.column);
      ctx.report('droppedColumns', ctx.step.column);
    },
  },
};
