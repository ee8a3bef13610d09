import type { StepActions } from '../types';
import type { DropDefaultStep } from './schema';
import { setColumnDefault } from '../set-default/sql';
import { currentDefault, deferredToContract } from '../set-default/apply';

export const dropDefaultActions: StepActions<DropDefaultStep> = {
  phases: [
    {
      name: 'apply',
      doing: 'DROP DEFAULT',
      transactional: true,
      async run(ctx) {
        const previousDefault = await currentDefault(ctx);
        // the new column of an alterColumn: contract leaves it without a default (core/rollout/columns.ts `laterChangesOf`)
        const alter = deferredToContract(ctx);
        if (alter) return { previousDefault, droppedAtContractOf: alter };
        if (previousDefault !== null) await setColumnDefault(ctx.db, ctx.table, ctx.step.column, null);
        return { previousDefault };
      },
    },
  ],
  async revert(ctx) {
    const previous = ctx.detail.previousDefault as string | null | undefined;
    if (previous) await setColumnDefault(ctx.db, ctx.table, ctx.step.column, previous);
  },
};
