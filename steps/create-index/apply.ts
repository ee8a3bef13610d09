import type { StepActions, StepContext } from '../types';
import type { CreateIndexStep } from './schema';
import { indexNameOf } from '../../core/rollout/object-names';
import { relationInfo, buildIndexConcurrently, dropIndexConcurrently, missingColumns, tableExists } from './sql';
import { failure, pgMessage } from '../../db/errors';
import { FailureType } from '../../core/common/failures';

/**
 * Fails (naming the field) when an index of this name could not be ours: a
 * relation of that name exists before the step touched anything. Shared by the
 * kinds that build an index.
 */
export async function checkIndexName(ctx: StepContext<unknown>, table: string, name: string, field: string): Promise<void> {
  const existing = await relationInfo(ctx.db, table, name);
  if (existing) {
    const what = existing.indexOn ? `an index on ${existing.indexOn}` : 'a relation';
    throw ctx.fail(
      field,
      `${what} named "${name}" already exists and was not created by this step; choose another ${field} (or drop it first)`,
    );
  }
}

export async function checkColumns(ctx: StepContext<unknown>, table: string, columns: string[], field: string): Promise<void> {
  if (!(await tableExists(ctx.db, table))) throw ctx.fail('table', `table ${table} does not exist`);
  const missing = await missingColumns(ctx.db, table, columns);
  if (missing.length) throw ctx.fail(field, `${table} has no column ${missing.map((m) => `"${m}"`).join(', ')}; fix ${field}`);
}

interface Detail {
  index: string;
}

/**
 * Two phases: `checked` (in the step transaction: the name is free, the
 * columns exist; records the name, so a retry knows the index is its own),
 * then `built` outside a transaction: CREATE INDEX CONCURRENTLY, after
 * dropping an INVALID leftover of an earlier attempt.
 */
export const createIndexActions: StepActions<CreateIndexStep> = {
  phases: [
    {
      name: 'checked',
      doing: 'check the index name and columns',
      transactional: true,
      async run(ctx) {
        const name = indexNameOf(ctx.step, ctx.table);
        await checkColumns(
          ctx,
          ctx.table,
          [...(ctx.step.columns ?? []), ...(ctx.step.include ?? [])],
          ctx.step.columns ? 'columns' : 'include',
        );
        await checkIndexName(ctx, ctx.table, name, 'name');
        const detail: Detail = { index: name };
        return { ...detail };
      },
    },
    {
      name: 'built',
      doing: 'CREATE INDEX CONCURRENTLY', // lint-layers: ok (error text)
      transactional: false,
      async run(ctx) {
        const { index } = ctx.detail as unknown as Detail;
        const s = ctx.step;
        try {
          const r = await buildIndexConcurrently(ctx.db, {
            table: ctx.table,
            name: index,
            unique: s.unique,
            method: s.method,
            columns: s.columns,
            expressions: s.expressions,
            include: s.include,
            where: s.where,
            with: s.with,
          });
          return { droppedInvalidLeftover: r.droppedInvalid };
        } catch (err) {
          // a unique build over duplicates will fail the same way again: take its INVALID leftover away and say so
          if ((err as { code?: string })?.code !== '23505') throw err;
          await dropIndexConcurrently(ctx.db, ctx.table, index);
          throw failure(
            FailureType.StepValidationFailed,
            `step "${ctx.stepId}": ${ctx.table} has duplicate keys, so unique index ${index} cannot be built; remove them first (${pgMessage(err)})`,
            { stepId: ctx.stepId },
          );
        }
      },
    },
  ],
  isRevertOutsideTransaction: true,
  async revert(ctx) {
    const { index } = ctx.detail as unknown as Partial<Detail>;
    if (index) await dropIndexConcurrently(ctx.db, ctx.table, index);
  },
};
