import type { PoolClient } from 'pg';
import { readColumnObjects } from '../../db/rollout/column-objects';
import { runDuplicationStatement } from '../../db/rollout/duplicate';
import { classifyPgError, failure, pgMessage } from '../../db/errors';
import { FailureType } from '../../core/common/failures';
import { contractActions } from '../../core/rollout/alter-column/duplicate';
import type { ColumnObjects, DuplicationPlan, Phase } from '../../core/rollout/alter-column/duplication-types';
import { checkContract, type ContractCheck } from '../../core/rollout/alter-column/contract-check';
import { planColumnChange, type AlterColumnShape, type RolloutStepRef } from '../../core/rollout/alter-column/plan-column-change';
import { newColumnName, versionSchemaPattern } from '../../core/rollout/object-names';

/**
 * The activity side of "the new column is a full duplicate": the plan from
 * the old column's objects (read again whenever needed: the names are
 * deterministic, so apply and contract agree without storing it), each
 * phase's statements with failures that name the object and the fix.
 */

export interface DuplicationRef {
  db: PoolClient;
  stepId: string;
  table: string;
  step: AlterColumnShape;
  /** The rollout's steps (spec order, logical names resolved): the other alterColumns and later steps the plan reads. */
  allSteps: RolloutStepRef[];
}

export async function oldColumnObjects(r: DuplicationRef): Promise<ColumnObjects> {
  return readColumnObjects(r.db, r.table, r.step.column, versionSchemaPattern(r.table));
}

/** The step's duplication plan: the one planner `stagefill plan` calls too (core/rollout/alter-column/plan-column-change.ts). */
export function duplicationOf(r: DuplicationRef, objects: ColumnObjects): DuplicationPlan {
  return planColumnChange(r.allSteps, r.stepId, objects);
}

/** Refuses a step whose old column has objects that cannot follow, before any DDL. */
export function refuseProblems(r: DuplicationRef, plan: DuplicationPlan): void {
  if (!plan.problems.length) return;
  throw failure(
    FailureType.StepSetupError,
    `step "${r.stepId}" (alterColumn on ${r.table}): column: ${plan.problems.map((p) => p.message).join('; ')}`,
    { stepId: r.stepId, field: 'column', problems: plan.problems },
  );
}

/** The phase's statements in order. A lock timeout or a lost connection goes on as it came (retried); anything else names the object and the fix. */
export async function runDuplicationPhase(r: DuplicationRef, plan: DuplicationPlan, phase: Phase): Promise<string[]> {
  const done: string[] = [];
  for (const a of plan.actions.filter((x) => x.phase === phase)) {
    await runNamed(r, a);
    done.push(`${a.op} ${a.object}`);
  }
  return done;
}

async function runNamed(r: DuplicationRef, a: DuplicationPlan['actions'][number]): Promise<void> {
  try {
    await runDuplicationStatement(r.db, a);
  } catch (err) {
    if (classifyPgError(err) !== 'fatal') throw err;
    throw failure(
      FailureType.StepSqlError,
      `step "${r.stepId}" (alterColumn on ${r.table}): ${a.object} cannot follow to ${target(r)}: ${pgMessage(err)}${a.fix ? `; fix: ${a.fix}` : ''}`,
      {
        stepId: r.stepId,
        object: a.object,
        code: (err as { code?: string })?.code ?? null,
      },
    );
  }
}

function target(r: DuplicationRef): string {
  return `${newColumnName(r.step)}${r.step.newType ? ` (${r.step.newType})` : ''}`;
}

/** The old column's objects against the new column's, just before contract. */
export async function contractCheckOf(r: DuplicationRef): Promise<{ plan: DuplicationPlan; check: ContractCheck }> {
  const old = await oldColumnObjects(r);
  const p = duplicationOf(r, old);
  const now = await readColumnObjects(r.db, r.table, newColumnName(r.step), versionSchemaPattern(r.table));
  return { plan: p, check: checkContract(old, now, p) };
}

/**
 * The swap, inside contract's one transaction: what must move before the old
 * column goes, the old column dropped, the new one renamed to the logical
 * name, then everything renamed and attached to its original's name.
 */
export async function swapColumns(
  r: DuplicationRef,
  p: DuplicationPlan,
  drop: (column: string) => Promise<void>,
  rename: (from: string, to: string) => Promise<void>,
): Promise<void> {
  const { beforeDrop, afterDrop } = contractActions(p);
  for (const a of beforeDrop) await runNamed(r, a);
  await drop(p.oldColumn);
  if (p.newColumn !== p.finalName) await rename(p.newColumn, p.finalName);
  for (const a of afterDrop) await runNamed(r, a);
}
