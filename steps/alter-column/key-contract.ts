import type { ContractContext } from '../types';
import type { ColumnObjects } from '../../core/rollout/alter-column/duplication-types';
import { tableColumns } from '../../db/rollout/ddl';
import { failure } from '../../db/errors';
import { FailureType } from '../../core/common/failures';
import type { AlterColumnStep } from './schema';
import { newColumnName } from '../../core/rollout/object-names';
import { oldColumnObjects, duplicationOf, runDuplicationPhase, type DuplicationRef } from './duplicate';
import { alteredElsewhere, alterStepOf, contractOf, leftOutOf } from '../../core/rollout/alter-column/plan-column-change';

/**
 * Contract of a key changed across tables, in the order that never leaves a
 * foreign key pointing at a dropped column: each child's contract first (its
 * key, made over its new column to the parent's new column NOT VALID and
 * validated in its prepare, replaces the old one), then the parent's (whose
 * old column nothing references any more).
 */

/** True while `table`.`column` of an alterColumn step has its new column beside it (its contract has not run). */
async function isExpanded(
  ctx: ContractContext<AlterColumnStep>,
  table: string,
  step: { column: string; newName?: string },
): Promise<boolean> {
  const cols = new Set((await tableColumns(ctx.db, table)).map((c) => c.name));
  return cols.has(step.column) && cols.has(newColumnName(step));
}

function held(ctx: ContractContext<AlterColumnStep>, message: string, missing: { object: string; why: string }[]): Error {
  return failure(FailureType.ContractHeld, `step "${ctx.stepId}" (alterColumn on ${ctx.table}): ${message}`, {
    stepId: ctx.stepId,
    missing,
  });
}

/** A parent's contract holds while a child's column referencing it, changed by the same rollout, has not been contracted. */
export async function keysMoveFirst(ctx: ContractContext<AlterColumnStep>, old: ColumnObjects): Promise<void> {
  // a key added since expand from a column the rollout does not change: contract would leave it of the old type
  const left = leftOutOf(ctx.allSteps, { id: ctx.stepId, table: ctx.table, step: ctx.step }, old);
  if (left.length) {
    throw held(
      ctx,
      `contract of ${ctx.table} would recreate foreign keys from columns the rollout does not change to ${ctx.step.newType}, so it holds and drops nothing (roll back, and start the rollout again with those columns changed too):\n${left.map((l) => `  LEFT OUT  ${l.object}: ${l.message}`).join('\n')}`,
      left.map((l) => ({ object: l.object, why: `${l.table}.${l.column} is not changed to ${ctx.step.newType}` })),
    );
  }
  const waiting: { object: string; why: string }[] = [];
  for (const f of old.referencedBy) {
    if (f.table === ctx.table) continue;
    for (const c of f.columns) {
      const child = alterStepOf(ctx.allSteps, f.table, c);
      if (!child || !(await isExpanded(ctx, f.table, child.step))) continue;
      const contract = contractOf(ctx.allSteps, f.table);
      waiting.push({
        object: `FOREIGN KEY ${f.name} of ${f.table}`,
        why: contract
          ? `${f.table} is not contracted yet: its contract (step "${contract.id}") must run first; make this table's contract step dependsOn "${contract.id}"`
          : `${f.table}.${c} is changed by step "${child.id}" but the rollout has no contract step for ${f.table}; add one and make this table's contract dependsOn it`,
      });
    }
  }
  if (waiting.length) {
    throw held(
      ctx,
      `contract of ${ctx.table} waits for the contracts of the tables whose foreign keys reference ${ctx.step.column} (they move first), so it holds and drops nothing:\n${waiting.map((w) => `  WAITING  ${w.object}: ${w.why}`).join('\n')}`,
      waiting,
    );
  }
}

/**
 * A child's contract: the parents' (other alterColumn steps' tables') unique
 * indexes and validated counterparts on their new columns are built first
 * (their own afterBackfill phase, idempotent), so this child's foreign key can
 * reference them. Returns what it built.
 */
export async function parentsReady(ctx: ContractContext<AlterColumnStep>, r: DuplicationRef, old: ColumnObjects): Promise<string[]> {
  const done: string[] = [];
  const altered = alteredElsewhere(ctx.allSteps, ctx.table);
  for (const f of old.foreignKeys) {
    for (const a of altered.filter((x) => x.table === f.refTable && f.refColumns.includes(x.column))) {
      const parent = alterStepOf(ctx.allSteps, a.table, a.column)!;
      if (!(await isExpanded(ctx, a.table, parent.step))) {
        throw held(
          ctx,
          `FOREIGN KEY ${f.name} references ${a.table}.${a.column}, whose contract already ran: contract the child tables first (make the contract of ${a.table} dependsOn the contract of ${ctx.table})`,
          [{ object: `FOREIGN KEY ${f.name}`, why: `${a.table}.${a.newColumn} is gone` }],
        );
      }
      const p: DuplicationRef = {
        db: r.db,
        stepId: parent.id,
        table: parent.table,
        step: parent.step,
        allSteps: ctx.allSteps,
      };
      for (const x of await runDuplicationPhase(p, duplicationOf(p, await oldColumnObjects(p)), 'afterBackfill'))
        done.push(`${parent.table}: ${x}`);
    }
  }
  return done;
}
