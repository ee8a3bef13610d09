import type { StepActions } from '../types';
import type { SqlStep } from './schema';
import { runUserStatements } from '../../db/ddl';

export const sqlActions: StepActions<SqlStep> = {
  phases: [
    {
      name: 'apply',
      transactional: true,
      async run(ctx) {
        await runUserStatements(ctx.db, ctx.step.apply);
        return {};
      },
    },
  ],
  async revert(ctx) {
    await runUserStatements(ctx.db, ctx.step.revert);
  },
};
