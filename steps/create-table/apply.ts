import { inTransaction, type StepActions } from '../types';
import type { CreateTableStep } from './schema';
import type { CatalogSnapshot } from '../../db/rollout/catalog';
import { snapshotCatalog, compareCatalogs } from '../../db/rollout/catalog';
import { createTableStatements, relationExists, runStatements, lockTableExclusive, countRowsUpTo, dropTable } from './sql';

// view schemas are stagefill's own (expose reverts them first): the snapshot leaves them out
const NO_VIEW_SCHEMAS = '^$';
const ROWS_SHOWN = 1000;

export const createTableActions: StepActions<CreateTableStep> = {
  phases: [
    inTransaction('create', async (ctx) => {
      const { db, table, step } = ctx;
      if (await relationExists(db, table))
        throw ctx.fail('table', `${table} already exists; createTable makes a new table (name another, or drop it first)`);
      await runStatements(db, createTableStatements(table, step));
      // what stagefill created, as the catalog says, committed with the table: the revert compares against it
      const created = await snapshotCatalog(db, table, NO_VIEW_SCHEMAS);
      return { created };
    }),
  ],
  /**
   * Drops the table only if it is still what stagefill created: the same
   * catalog (columns, constraints, indexes, triggers, views) and, unless
   * `revertDropsRows`, no rows. Otherwise someone else's work would go with it:
   * hold, say why, and try again on `retry` (after the operator removed it,
   * emptied it or dropped the table).
   */
  async revert(ctx) {
    const { db, table, step } = ctx;
    if (!(await relationExists(db, table))) return;
    await lockTableExclusive(db, table);
    const created = ctx.detail.created as CatalogSnapshot | undefined;
    if (!created)
      return {
        hold: `${table}: no catalog snapshot was recorded when stagefill created it, so it cannot tell the table is still its own; drop it yourself if it is, then retry`,
      };
    const diff = compareCatalogs(created, await snapshotCatalog(db, table, NO_VIEW_SCHEMAS));
    if (diff.length)
      return {
        hold: `${table} changed since stagefill created it (${diff.join('; ')}); not dropping someone else's work: undo the change or drop the table yourself, then retry`,
      };
    if (!step.revertDropsRows) {
      const n = await countRowsUpTo(db, table, ROWS_SHOWN + 1);
      if (n > 0) {
        return {
          hold: `${table} holds ${n > ROWS_SHOWN ? `more than ${ROWS_SHOWN}` : n} row${n === 1 ? '' : 's'} written after stagefill created it; not dropping data it did not write: delete them or drop the table yourself (revertDropsRows: true when the rollout fills it), then retry`,
        };
      }
    }
    await dropTable(db, table);
  },
};
