import type { StepActions } from '../types';
import type { RenameConstraintStep } from './schema';
import { constraintExists } from '../../db/rollout/ddl';
import { relationInfo } from '../create-index/sql';
import { renameConstraint } from './sql';

export const renameConstraintActions: StepActions<RenameConstraintStep> = {
  phases: [
    {
      name: 'apply',
      doing: 'RENAME CONSTRAINT',
      transactional: true,
      async run(ctx) {
        const { db, table, step } = ctx;
        if (!(await constraintExists(db, table, step.from))) throw ctx.fail('from', `${table} has no constraint "${step.from}"; fix from`);
        if (await constraintExists(db, table, step.to))
          throw ctx.fail('to', `${table} already has a constraint "${step.to}"; choose another name`);
        // a unique or primary key renames its index too: that name must be free as well
        const clash = await relationInfo(db, table, step.to);
        if (clash) throw ctx.fail('to', `a relation named "${step.to}" already exists in the schema of ${table}; choose another name`);
        await renameConstraint(db, table, step.from, step.to);
        return { renamedFrom: step.from, renamedTo: step.to };
      },
    },
  ],
  async revert(ctx) {
    const { renamedFrom, renamedTo } = ctx.detail as { renamedFrom?: string; renamedTo?: string };
    if (renamedFrom && renamedTo && (await constraintExists(ctx.db, ctx.table, renamedTo)))
      await renameConstraint(ctx.db, ctx.table, renamedTo, renamedFrom);
  },
};
