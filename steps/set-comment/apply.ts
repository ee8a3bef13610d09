import type { StepActions } from '../types';
import type { SetCommentStep } from './schema';
import type { CommentTarget } from './sql';
import { readComment, writeComment } from './sql';

function targetOf(step: SetCommentStep): CommentTarget {
  return step.on === 'table' ? { on: 'table' } : { on: step.on, name: step.name! };
}

/** The previous comment is recorded with the change, so the revert puts back exactly that. */
export const setCommentActions: StepActions<SetCommentStep> = {
  phases: [
    {
      name: 'apply',
      doing: 'COMMENT ON',
      transactional: true,
      async run(ctx) {
        const target = targetOf(ctx.step);
        const previousComment = await readComment(ctx.db, ctx.table, target);
        if (previousComment === undefined)
          throw ctx.fail(
            ctx.step.on === 'table' ? 'table' : 'name',
            `${ctx.table} has no ${ctx.step.on}${ctx.step.on === 'table' ? '' : ` "${ctx.step.name}"`}; fix the step`,
          );
        await writeComment(ctx.db, ctx.table, target, ctx.step.comment);
        return { previousComment };
      },
    },
  ],
  async revert(ctx) {
    if (!('previousComment' in ctx.detail)) return;
    await writeComment(ctx.db, ctx.table, targetOf(ctx.step), ctx.detail.previousComment as string | null);
  },
};
