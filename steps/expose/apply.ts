import { inTransaction, type StepActions } from '../types';
import type { ExposeStep } from './schema';
import { tableColumns, schemaExists, transactionTime } from '../../db/rollout/ddl';
import { createVersionView, dropVersionView } from '../../db/rollout/views';
import type { ReadPathRow } from '../../db/rollout/read-paths';
import { lockReadPath, setReadPath, deleteReadPath } from '../../db/rollout/read-paths';
import { viewShapes, versionViewName } from '../../core/rollout/views';
import { viewSchemaName } from '../../core/rollout/object-names';
import { stepShape } from '..';
import { parseTable } from '../../core/common/table-name';

/**
 * The new shape of the table (what readers of `version` see) and the legacy
 * shape (version - 1), each a schema holding one view named like the table,
 * and the read-path flag moved to `version`.
 */
export const exposeActions: StepActions<ExposeStep> = {
  phases: [
    inTransaction('apply', async (ctx) => {
      const { step, table, db } = ctx;
      const mine = ctx.allSteps.filter((s) => s.table === table);
      const columns = (await tableColumns(db, table)).map((c) => c.name);
      const shapes = mine.map((s) => stepShape(s.step));
      const { newShape, legacyShape } = viewShapes(columns, shapes);
      // dropTable: no view in the new version; renameTable: the view under the new name
      const viewName = versionViewName(parseTable(table).name, shapes);
      const schema = viewSchemaName(table, step.version);
      const previous = (await lockReadPath(db, table)) ?? null;
      const created: string[] = [];
      if (await schemaExists(db, schema)) {
        // a canary widening (10% then 100%) exposes the version this rollout already exposed: only the flag moves
        const isOurs = previous?.workflow_id === ctx.workflowId && previous.version === step.version;
        if (!isOurs)
          throw ctx.fail(
            'version',
            `schema ${schema} already exists, so version ${step.version} of ${table} was exposed before; expose a higher version or drop that schema`,
          );
      } else {
        await createVersionView(db, { schema, table, columns: newShape, name: viewName });
        created.push(schema);
      }
      const legacy = step.version > 1 ? viewSchemaName(table, step.version - 1) : null;
      if (legacy && legacy !== schema && !(await schemaExists(db, legacy))) {
        await createVersionView(db, { schema: legacy, table, columns: legacyShape });
        created.push(legacy);
      }
      await setReadPath(db, {
        table_name: table,
        version: step.version,
        percent: step.percent,
        previous_version: previous?.version ?? null,
        workflow_id: ctx.workflowId,
      });
      const exposedAt = (await transactionTime(db)).toISOString();
      return {
        viewSchema: schema,
        viewName,
        legacySchema: legacy,
        createdSchemas: created,
        previousFlag: previous,
        version: step.version,
        percent: step.percent,
        exposedAt,
      };
    }),
  ],
  async revert(ctx) {
    const d = ctx.detail;
    // the new version's view may be renamed or absent (recorded as viewName; absent in details recorded before it was)
    for (const schema of [...((d.createdSchemas as string[] | undefined) ?? [])].reverse()) {
      await dropVersionView(ctx.db, schema, ctx.table, schema === d.viewSchema ? (d.viewName as string | null | undefined) : undefined);
    }
    const previous = d.previousFlag as ReadPathRow | null | undefined;
    if (previous) await setReadPath(ctx.db, previous);
    else await deleteReadPath(ctx.db, ctx.table);
  },
  contract: {
    // legacy views read the old columns: they go in the first pass, before any column does
    async release(ctx) {
      for (let v = 0; v < ctx.step.version; v++) {
        const schema = viewSchemaName(ctx.table, v);
        if (!(await schemaExists(ctx.db, schema))) continue;
        await dropVersionView(ctx.db, schema, ctx.table);
        ctx.report('droppedSchemas', schema);
      }
    },
  },
};
