import { inTransaction, type StepActions } from '../types';
import type { RenameTableStep } from './schema';
import { tableColumns } from '../../db/rollout/ddl';
import { nameTaken, renameTable } from './sql';
import { parseTable } from '../../core/common/table-name';

/**
 * Nothing changes before contract: expose names the new version's view `to`
 * (the kind's shape); the table keeps its name for the legacy version.
 * Contract renames it; the new version's view follows (views bind the table,
 * not its name).
 */
export const renameTableActions: StepActions<RenameTableStep> = {
  phases: [
    inTransaction('check', async (ctx) => {
      const { db, table, step } = ctx;
      if (!(await tableColumns(db, table)).length) throw ctx.fail('table', `${table} does not exist (or has no columns)`);
      if (await nameTaken(db, table, step.to))
        throw ctx.fail('to', `${parseTable(table).schema}.${step.to} already exists; name another or drop it first`);
      return { from: table, to: `${parseTable(table).schema}.${step.to}` };
    }),
  ],
  contract: {
    // second pass, after every other drop of the table's old shape: the rename comes last
    async complete(ctx) {
      if (await nameTaken(ctx.db, ctx.table, ctx.step.to))
        throw ctx.fail(
          'to',
          `${parseTable(ctx.table).schema}.${ctx.step.to} was created since the step applied; the table keeps its name: drop that one, then retry`,
        );
      await renameTable(ctx.db, ctx.table, ctx.step.to);
      ctx.report('renamed', `${ctx.table} -> ${parseTable(ctx.table).schema}.${ctx.step.to}`);
    },
  },
};
