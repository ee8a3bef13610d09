import type { StepActions, StepContext } from '../types';
import type { SetDefaultStep } from './schema';
import { columnDefault, setColumnDefault } from './sql';

/** Reads the column's default (failing, naming `column`, when there is no such column). */
export async function currentDefault(ctx: StepContext<{ column: string }>): Promise<string | null> {
  const d = await columnDefault(ctx.db, ctx.table, ctx.step.column);
  if (d === undefined) throw ctx.fail('column', `${ctx.table} has no column "${ctx.step.column}"; fix the step's column`);
  return d;
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
        return { previousDefault };
      },
    },
  ],
  async revert(ctx) {
    if (!('previousDefault' in ctx.detail)) return;
    await setColumnDefault(ctx.db, ctx.table, ctx.step.column, ctx.detail.previousDefault as string | null);
  },
};
