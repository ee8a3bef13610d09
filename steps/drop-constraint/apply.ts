import type { StepActions } from '../types';
import type { DropConstraintStep } from './schema';
import { dropConstraint } from '../../db/rollout/ddl';
import { constraintInfo } from './sql';

/** Records the constraint at apply; the contract's second pass drops it. */
export const dropConstraintActions: StepActions<DropConstraintStep> = {
  phases: [
    {
      name: 'checked',
      doing: 'check the constraint',
      transactional: true,
      async run(ctx) {
        const info = await constraintInfo(ctx.db, ctx.table, ctx.step.name);
        if (!info) throw ctx.fail('name', `${ctx.table} has no constraint "${ctx.step.name}"; fix the name`);
        if (info.dependents.length)
          throw ctx.fail('name', `foreign keys depend on "${ctx.step.name}" (${info.dependents.join(', ')}); drop them first`);
        return { constraint: ctx.step.name, type: info.type, def: info.def };
      },
    },
  ],
  contract: {
    async complete(ctx) {
      await dropConstraint(ctx.db, ctx.table, ctx.step.name);
      ctx.report('droppedConstraints', ctx.step.name);
    },
  },
};
