import type { StepActions, StepContext } from '../types';
import type { SetDefaultStep } from './schema';
import { alterOwning } from '../../core/rollout/columns';
import { columnDefault, setColumnDefault } from './sql';

/** Reads the column's default (failing, naming `column`, when there is no such column). */
export async function currentDefault(ctx: StepContext<{ column: string }>): Promise<string | null> {
  const d = await columnDefault(ctx.db, ctx.table, ctx.step.column);
  if (d === undefined) throw ctx.fail('column', `${ctx.table} has no column "${ctx.step.column}"; fix the step's column`);
  return d;
}

/**
 * The alterColumn whose new column this step acts on (the column a later step names after it), or undefined.
 * Its default is the sync trigger's business until contract: a default on the new column would make every
 * insert through the old version look like one that set the new column, so contract sets it instead
 * (core/rollout/columns.ts `laterChangesOf`).
 */
export function deferredToContract(ctx: StepContext<{ column: string }>): string | undefined {
  const alter = alterOwning(ctx.allSteps, ctx.indexOf(ctx.stepId), ctx.table, ctx.step.column);
  return alter ? ctx.allSteps.find((s) => s.step === (alter as unknown))?.id : undefined;
}

/** The previous default is recorded with the change (one transaction), so the revert puts back exactly that. */
export const setDefaultActions: StepActions<SetDefaultStep> = {
  phases: [
    {
      name: 'apply',
      doing: 'SET DEFAULT',
      transactional: true,
      async run(ctx) {
        const previousDefault = await currentDefault(ctx);
        await setColumnDefault(ctx.db, ctx.table, ctx.step.column, ctx.step.default);
        const alter = deferredToContract(ctx);
        if (alter) {
          // set (so the expression is checked against the new column's type) and taken off again: contract sets it
          await setColumnDefault(ctx.db, ctx.table, ctx.step.column, previousDefault);
          return { previousDefault, setAtContractOf: alter };
        }
        return { previousDefault };
      },
    },
  ],
  async revert(ctx) {
    if (!('previousDefault' in ctx.detail) || ctx.detail.setAtContractOf) return;
    await setColumnDefault(ctx.db, ctx.table, ctx.step.column, ctx.detail.previousDefault as string | null);
  },
};
