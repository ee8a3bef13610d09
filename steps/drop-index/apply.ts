import type { StepActions } from '../types';
import type { DropIndexStep } from './schema';
import { relationInfo, dropIndexConcurrently } from '../create-index/sql';

/** Records the index's definition; drops it CONCURRENTLY in the contract's pass outside a transaction. */
export const dropIndexActions: StepActions<DropIndexStep> = {
  phases: [
    {
      name: 'checked',
      doing: 'check the index',
      transactional: true,
      async run(ctx) {
        const info = await relationInfo(ctx.db, ctx.table, ctx.step.name);
        if (!info?.indexOn) throw ctx.fail('name', `there is no index "${ctx.step.name}" in the schema of ${ctx.table}; fix the name`);
        if (info.indexOn !== ctx.table)
          throw ctx.fail('name', `index "${ctx.step.name}" is on ${info.indexOn}, not ${ctx.table}; set the step's table`);
        if (info.constraint)
          throw ctx.fail('name', `index "${ctx.step.name}" backs constraint "${info.constraint}"; use a dropConstraint step for it`);
        return { index: ctx.step.name, def: info.def };
      },
    },
  ],
  contract: {
    async outsideTransaction(ctx) {
      await dropIndexConcurrently(ctx.db, ctx.table, ctx.step.name);
      ctx.report('droppedIndexes', ctx.step.name);
    },
  },
};
