import type { StepActions, StepContext } from '../types';
import type { AddUniqueStep } from './schema';
import { uniqueNameOf } from '../../core/rollout/object-names';
import { relationInfo, buildIndexConcurrently, dropIndexConcurrently } from '../create-index/sql';
import { checkColumns, checkIndexName } from '../create-index/apply';
import { constraintExists } from '../../db/rollout/ddl';
import { duplicateSample, attachUniqueIndex, dropConstraintIfExists } from './sql';
import { failure, pgMessage } from '../../db/errors';
import { FailureType } from '../../core/common/failures';

interface Detail {
  constraint: string;
}

async function duplicatesFailure(ctx: StepContext<AddUniqueStep>, cause?: unknown) {
  const sample = await duplicateSample(ctx.db, ctx.table, ctx.step.columns);
  const list = sample.map((d) => `${d.key} x${d.rows}`).join(', ');
  return failure(
    FailureType.StepValidationFailed,
    `step "${ctx.stepId}": ${ctx.table} has rows with the same (${ctx.step.columns.join(', ')}), so it cannot be made unique; ${sample.length ? `e.g. ${list}` : 'they were written during the build'}. Remove the duplicates first${cause ? ` (${pgMessage(cause)})` : ''}`,
    { stepId: ctx.stepId, duplicates: sample },
  );
}

/**
 * Three phases: `checked` looks for duplicates before any DDL (a plain
 * SELECT, no lock beyond ACCESS SHARE), `built` makes the unique index
 * CONCURRENTLY outside a transaction, `attached` turns it into the constraint
 * (an instant under lock_timeout).
 */
export const addUniqueActions: StepActions<AddUniqueStep> = {
  phases: [
    {
      name: 'checked',
      doing: 'look for duplicates',
      transactional: false,
      async run(ctx) {
        const name = uniqueNameOf(ctx.step, ctx.table);
        await checkColumns(ctx, ctx.table, ctx.step.columns, 'columns');
        if (await constraintExists(ctx.db, ctx.table, name))
          throw ctx.fail('name', `${ctx.table} already has a constraint "${name}"; choose another name`);
        await checkIndexName(ctx, ctx.table, name, 'name');
        if ((await duplicateSample(ctx.db, ctx.table, ctx.step.columns, 1)).length) throw await duplicatesFailure(ctx);
        const detail: Detail = { constraint: name };
        return { ...detail };
      },
    },
    {
      name: 'built',
      doing: 'CREATE UNIQUE INDEX CONCURRENTLY',
      transactional: false,
      async run(ctx) {
        const { constraint } = ctx.detail as unknown as Detail;
        try {
          const r = await buildIndexConcurrently(ctx.db, { table: ctx.table, name: constraint, unique: true, columns: ctx.step.columns });
          return { droppedInvalidLeftover: r.droppedInvalid };
        } catch (err) {
          // duplicates written after the check: the build leaves an INVALID index behind; take it away, then say which keys
          if ((err as { code?: string })?.code !== '23505') throw err;
          await dropIndexConcurrently(ctx.db, ctx.table, constraint);
          throw await duplicatesFailure(ctx, err);
        }
      },
    },
    {
      name: 'attached',
      doing: 'ADD CONSTRAINT ... UNIQUE USING INDEX',
      transactional: true,
      async run(ctx) {
        const { constraint } = ctx.detail as unknown as Detail;
        if (!(await constraintExists(ctx.db, ctx.table, constraint))) await attachUniqueIndex(ctx.db, ctx.table, constraint);
      },
    },
  ],
  isRevertOutsideTransaction: true,
  async revert(ctx) {
    const { constraint } = ctx.detail as unknown as Partial<Detail>;
    if (!constraint) return;
    // each statement commits on its own: the DROP CONSTRAINT is an instant under lock_timeout
    if (await constraintExists(ctx.db, ctx.table, constraint)) await dropConstraintIfExists(ctx.db, ctx.table, constraint);
    if ((await relationInfo(ctx.db, ctx.table, constraint))?.indexOn) await dropIndexConcurrently(ctx.db, ctx.table, constraint);
  },
};
