import { inTransaction, type StepActions, type StepContext } from '../types';
import type { DropTableStep } from './schema';
import { tableColumns, schemaExists } from '../../db/rollout/ddl';
import { dropVersionView } from '../../db/rollout/views';
import { viewSchemaName, isViewSchemaOf } from '../../core/rollout/object-names';
import { tableDependents, dropTableRestrict } from './sql';

/** The view schemas the rollout's expose steps give this table. */
function ownViewSchemas(ctx: StepContext<unknown>): string[] {
  return ctx.allSteps
    .filter((s) => s.table === ctx.table && s.step.kind === 'expose')
    .map((s) => viewSchemaName(ctx.table, (s.step as unknown as { version: number }).version));
}

/**
 * Nothing changes before contract: expose leaves the table out of the new
 * version (the kind's shape), the legacy version still reads it. Apply checks
 * that the contract's DROP will not be refused; contract drops it.
 */
export const dropTableActions: StepActions<DropTableStep> = {
  phases: [
    inTransaction('check', async (ctx) => {
      if (!(await tableColumns(ctx.db, ctx.table)).length) throw ctx.fail('table', `${ctx.table} does not exist (or has no columns)`);
      // stagefill's version views go before the DROP (legacy ones at contract's first pass, the new version's with it)
      const blockers = await tableDependents(ctx.db, ctx.table, (s) => isViewSchemaOf(ctx.table, s));
      if (blockers.length)
        throw ctx.fail(
          'table',
          `${ctx.table} cannot be dropped at contract while ${blockers.join(', ')} depend${blockers.length === 1 ? 's' : ''} on it; drop or change ${blockers.length === 1 ? 'it' : 'them'} first (a rollout step can)`,
        );
      return { table: ctx.table };
    }),
  ],
  contract: {
    // second pass: the legacy views are gone (expose's release); the new version's schema holds no view of the table
    async complete(ctx) {
      for (const schema of ownViewSchemas(ctx)) {
        if (!(await schemaExists(ctx.db, schema))) continue;
        await dropVersionView(ctx.db, schema, ctx.table);
        ctx.report('droppedSchemas', schema);
      }
      await dropTableRestrict(ctx.db, ctx.table);
      ctx.report('droppedTables', ctx.table);
      ctx.columns.clear();
    },
  },
};
