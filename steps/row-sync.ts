import { parseBackfillSpec } from './spec';
import { checkRowExpression, stepBackfillTransform } from '../db/rollout/ddl';
import { existingTables } from '../db/rollout/preflight';
import { stepTriggerName } from '../db/rollout/triggers';
import { stepBackfillName } from '../core/common/hash';
import { classifyPgError, failure, pgMessage } from '../db/errors';
import { FailureType } from '../core/common/failures';
import { THROTTLE_DEFAULTS } from '../core/common/throttle-limits';
import type { StepContext } from './types';
import type { BackfillSpec } from '../core/common/fields';

/**
 * Activity-side pieces the column kinds (addColumn, alterColumn) share: the
 * name of a step's row trigger, the check of a user expression before any DDL,
 * and the backfill that fills a column a step added.
 */

/**
 * Postgres fires BEFORE triggers in name order: rank 1 (two-way syncs) before
 * rank 2 (computed columns), since an `up` may read a column another step keeps
 * in sync; the step's index keeps the spec's order within a rank.
 */
export function triggerOf(ctx: Pick<StepContext, 'rolloutId' | 'table' | 'stepId' | 'indexOf'>, rank: 1 | 2): string {
  return stepTriggerName(ctx.rolloutId, ctx.table, ctx.stepId, rank, ctx.indexOf(ctx.stepId));
}

/** Plans `expr` over the table's rows (reading none): an unknown column or a type mismatch fails here, naming the field, not later in every write's trigger. */
export async function checkExpression(ctx: StepContext<{ kind: string }>, field: string, expr: string, type: string): Promise<void> {
  // a missing table is not the expression's fault: name the table (plan and start refuse this before a run starts)
  if (!(await existingTables(ctx.db, [ctx.table])).has(ctx.table)) {
    throw failure(
      FailureType.StepSqlError,
      `step "${ctx.stepId}" (${ctx.step.kind} on ${ctx.table}): table ${ctx.table} does not exist; create it first, or fix the rollout's table (the spec's, or the step's)`,
      { stepId: ctx.stepId, code: '42P01' },
    );
  }
  try {
    await checkRowExpression(ctx.db, ctx.table, expr, type);
  } catch (err) {
    if (classifyPgError(err) !== 'fatal') throw err;
    throw failure(
      FailureType.StepSqlError,
      `step "${ctx.stepId}" (${ctx.step.kind} on ${ctx.table}): ${field}: (${expr}) is not an expression over the rows of ${ctx.table} giving ${type}: ${pgMessage(err)}; fix the step's ${field}`,
      { stepId: ctx.stepId, code: (err as { code?: string })?.code ?? null },
    );
  }
}

interface ColumnStep {
  kind: string;
  up: string;
  backfill?: {
    key?: string;
    chunkSize?: number;
    parallelism?: number;
    throttle?: BackfillSpec['throttle'];
    lockTimeoutMs?: number;
    statementTimeoutMs?: number;
  };
}

/** The backfill that sets `column` to the step's `up` for every existing row, as a checked BackfillSpec. */
export function columnBackfill(
  ctx: Pick<StepContext<ColumnStep>, 'step' | 'stepId' | 'table' | 'rolloutName'>,
  column: string,
): BackfillSpec {
  const tuning = ctx.step.backfill;
  const key = tuning?.key ?? 'id';
  try {
    return parseBackfillSpec({
      kind: 'backfill',
      name: stepBackfillName(ctx.rolloutName, ctx.stepId),
      table: ctx.table,
      key,
      chunkSize: tuning?.chunkSize ?? THROTTLE_DEFAULTS.chunkSize,
      parallelism: tuning?.parallelism ?? THROTTLE_DEFAULTS.parallelism,
      throttle: tuning?.throttle,
      lockTimeoutMs: tuning?.lockTimeoutMs,
      statementTimeoutMs: tuning?.statementTimeoutMs,
      transform: stepBackfillTransform(ctx.table, column, ctx.step.up, key),
    });
  } catch (err) {
    throw failure(
      FailureType.StepSetupError,
      `step "${ctx.stepId}" (${ctx.step.kind} on ${ctx.table}): its backfill is not valid: ${(err as Error).message}`,
    );
  }
}
