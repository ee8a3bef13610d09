import type { StepActions } from '../types';
import type { AddForeignKeyStep } from './schema';
import { foreignKeyNameOf, referencingIndexNameOf } from '../../core/rollout/object-names';
import { relationInfo, buildIndexConcurrently, dropIndexConcurrently, tableExists, missingColumns } from '../create-index/sql';
import { checkColumns, checkIndexName } from '../create-index/apply';
import { constraintExists, validateConstraint, dropConstraint } from '../../db/rollout/ddl';
import { dropConstraintIfExists } from '../add-unique/sql';
import { addForeignKeyNotValid, hasUniqueIndexOn, hasIndexLeadingWith } from './sql';
import { failure, pgMessage } from '../../db/errors';
import { FailureType } from '../../core/common/failures';
import { qualifiedName } from '../../core/common/table-name';

interface Detail {
  constraint: string;
  /** The index `referencingIndex: create` builds (set only when none led with the columns). */
  index: string | null;
  warning?: string;
}

/**
 * NOT VALID (instant), VALIDATE in its own transaction (a scan under SHARE
 * UPDATE EXCLUSIVE), and for `referencingIndex: create` an index on the
 * referencing columns built CONCURRENTLY outside a transaction.
 */
export const addForeignKeyActions: StepActions<AddForeignKeyStep> = {
  phases: [
    {
      name: 'not_valid',
      doing: 'ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID',
      transactional: true,
      async run(ctx) {
        const { step, table, db } = ctx;
        const refTable = qualifiedName(step.references.table);
        const name = foreignKeyNameOf(step, table);
        await checkColumns(ctx, table, step.columns, 'columns');
        if (!(await tableExists(db, refTable))) throw ctx.fail('references.table', `table ${refTable} does not exist`);
        const missing = await missingColumns(db, refTable, step.references.columns);
        if (missing.length) throw ctx.fail('references.columns', `${refTable} has no column ${missing.map((m) => `"${m}"`).join(', ')}`);
        if (!(await hasUniqueIndexOn(db, refTable, step.references.columns))) {
          throw ctx.fail(
            'references.columns',
            `${refTable} has no primary key or valid unique index on exactly (${step.references.columns.join(', ')}); a foreign key must reference one (add it first, e.g. an addUnique step)`,
          );
        }
        if (await constraintExists(db, table, name))
          throw ctx.fail('name', `${table} already has a constraint "${name}"; choose another name`);
        const hasIndex = await hasIndexLeadingWith(db, table, step.columns);
        const detail: Detail = { constraint: name, index: null };
        if (!hasIndex && step.referencingIndex === 'create') {
          detail.index = referencingIndexNameOf(step, table);
          await checkIndexName(ctx, table, detail.index, 'referencingIndex');
        }
        if (!hasIndex && step.referencingIndex === 'warn') {
          detail.warning = `no index on ${table} leads with (${step.columns.join(', ')}): every delete or key update on ${refTable} scans ${table}; set referencingIndex: create to build one`;
        }
        await addForeignKeyNotValid(db, {
          table,
          name,
          columns: step.columns,
          refTable,
          refColumns: step.references.columns,
          match: step.match,
          onDelete: step.onDelete,
          onUpdate: step.onUpdate,
        });
        return { ...detail };
      },
    },
    {
      name: 'validated',
      doing: 'VALIDATE CONSTRAINT',
      transactional: true,
      async run(ctx) {
        await validateConstraint(ctx.db, ctx.table, (ctx.detail as unknown as Detail).constraint);
      },
      // rows without a match: take the NOT VALID constraint away again, so the step leaves nothing behind
      async recover(err, ctx) {
        if ((err as { code?: string })?.code !== '23503') return undefined;
        await dropConstraint(ctx.db, ctx.table, (ctx.detail as unknown as Detail).constraint);
        return failure(
          FailureType.StepValidationFailed,
          `step "${ctx.stepId}": rows of ${ctx.table} reference (${ctx.step.columns.join(', ')}) values missing from ${ctx.step.references.table}; fix the data first (${pgMessage(err)})`,
          { stepId: ctx.stepId },
        );
      },
    },
    {
      name: 'referencing_index',
      doing: 'CREATE INDEX CONCURRENTLY on the referencing columns', // lint-layers: ok (error text)
      transactional: false,
      async run(ctx) {
        const { index } = ctx.detail as unknown as Detail;
        if (!index) return;
        const r = await buildIndexConcurrently(ctx.db, { table: ctx.table, name: index, columns: ctx.step.columns });
        return { droppedInvalidLeftover: r.droppedInvalid };
      },
    },
  ],
  isRevertOutsideTransaction: true,
  async revert(ctx) {
    const d = ctx.detail as unknown as Partial<Detail>;
    if (!d.constraint) return;
    // autocommit: the DROP CONSTRAINT is an instant under lock_timeout, the index goes CONCURRENTLY
    await dropConstraintIfExists(ctx.db, ctx.table, d.constraint);
    if (d.index && (await relationInfo(ctx.db, ctx.table, d.index))?.indexOn) await dropIndexConcurrently(ctx.db, ctx.table, d.index);
  },
};
