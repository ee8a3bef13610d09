import { inTransaction, type StepActions, type ContractContext, type StepContext } from '../types';
import type { AlterColumnStep } from './schema';
import { tableColumns, dropColumn, renameColumn } from '../../db/rollout/ddl';
import { dropStepTrigger } from '../../db/rollout/triggers';
import { createSyncTrigger, syncedBackfillTransform } from '../../db/rollout/sync-triggers';
import { classifyPgError, failure, pgMessage } from '../../db/errors';
import { FailureType } from '../../core/common/failures';
import type { PlacedStep } from '../../core/rollout/columns';
import { columnMapAt, newVersionRow } from '../../core/rollout/columns';
import { formatContractCheck } from '../../core/rollout/alter-column/contract-check';
import { formatLeftOut } from '../../core/rollout/alter-column/key-references';
import type { DuplicationPlan } from '../../core/rollout/alter-column/duplication-types';
import { viewSchemaName, newColumnName } from '../../core/rollout/object-names';
import { triggerOf, checkExpression, columnBackfill } from '../row-sync';
import { addNewColumn, checkOverNewRow } from './sql';
import {
  oldColumnObjects,
  duplicationOf,
  refuseProblems,
  runDuplicationPhase,
  contractCheckOf,
  swapColumns,
  type DuplicationRef,
} from './duplicate';
import { leftOutOf } from '../../core/rollout/alter-column/plan-column-change';
import { keysMoveFirst, parentsReady } from './key-contract';

function ref(ctx: {
  db: DuplicationRef['db'];
  stepId: string;
  table: string;
  step: AlterColumnStep;
  allSteps: StepContext['allSteps'];
}): DuplicationRef {
  return { db: ctx.db, stepId: ctx.stepId, table: ctx.table, step: ctx.step, allSteps: ctx.allSteps };
}

/** Plans computed in contract's first pass (the old column still there) for its second, per contract transaction. */
const contractPlans = new WeakMap<object, Map<string, DuplicationPlan>>();

/**
 * A new column that is a full duplicate of the old one (every constraint,
 * index, default, key, comment and privilege: core/rollout/alter-column/duplicate.ts), kept in
 * sync by a trigger that never writes the legacy column unless the write
 * came through the new version (db/rollout/sync-triggers.ts). Contract checks every
 * counterpart is in place (else the rollout holds), then swaps.
 */
export const alterColumnActions: StepActions<AlterColumnStep> = {
  backfills: (ctx) => {
    const bf = columnBackfill(ctx, newColumnName(ctx.step));
    // the step's backfill tags its transaction, so the sync trigger leaves the legacy column alone
    return [{ ...bf, transform: syncedBackfillTransform(ctx.table, newColumnName(ctx.step), ctx.step.up, bf.key as string) }];
  },
  phases: [
    inTransaction('apply', async (ctx) => {
      const { step, table, db } = ctx;
      const newColumn = newColumnName(step);
      const columns = await tableColumns(db, table);
      const current = columns.find((c) => c.name === step.column);
      if (!current) throw ctx.fail('column', `${table} has no column "${step.column}"; fix the step's column`);
      // every object of the old column must be able to follow, or nothing happens
      const r = ref(ctx);
      const objects = await oldColumnObjects(r);
      // a key's type changes only with every column referencing it (read now: a key added after `plan` counts too)
      const left = leftOutOf(ctx.allSteps, { id: ctx.stepId, table, step }, objects);
      if (left.length)
        throw failure(
          FailureType.StepSetupError,
          `step "${ctx.stepId}" (alterColumn on ${table}): column: the columns referencing ${table}.${step.column} must change with it, so the step refuses before any data moves:\n${formatLeftOut(left)}`,
          {
            stepId: ctx.stepId,
            field: 'column',
            leftOut: left.map((l) => ({ foreignKey: l.foreignKey, table: l.table, column: l.column })),
          },
        );
      const plan = duplicationOf(r, objects);
      refuseProblems(r, plan);
      const type = step.newType ?? current.type;
      const trigger = triggerOf(ctx, 1);
      await checkExpression(ctx, 'up', step.up, type);
      await addNewColumn(db, table, newColumn, type);
      // `down` reads the new version's row: the columns as the new version names them
      const placed = ctx.allSteps as unknown as PlacedStep[];
      const here = ctx.indexOf(ctx.stepId);
      // the other alterColumns whose new column exists already (a graph may not have run the rest), and this one
      const present = new Set([...columns.map((c) => c.name), newColumn]);
      const alters = columnMapAt(placed, here, table).alters.filter((a) => a.column !== step.column && present.has(newColumnName(a)));
      const newRow = newVersionRow([...present], [...alters, step]);
      // the physical new column stays readable under its own name, so a `down` written against it keeps working
      if (!newRow.some((c) => c.as === newColumn)) newRow.push({ source: newColumn, as: newColumn });
      try {
        await checkOverNewRow(db, table, step.down, current.type, newRow);
      } catch (err) {
        if (classifyPgError(err) !== 'fatal') throw err;
        throw failure(
          FailureType.StepSqlError,
          `step "${ctx.stepId}" (alterColumn on ${table}): down: (${step.down}) is not an expression over the new version's row (${newRow.map((c) => c.as).join(', ')}) giving ${current.type}: ${pgMessage(err)}; fix the step's down`,
          { stepId: ctx.stepId, code: (err as { code?: string })?.code ?? null },
        );
      }
      const newVersionSchemas = placed
        .filter((s, i) => i > here && s.table === table && s.step.kind === 'expose')
        .map((s) => viewSchemaName(table, (s.step as { version: number }).version));
      await createSyncTrigger(db, {
        table,
        oldColumn: step.column,
        newColumn,
        up: step.up,
        down: step.down,
        newRow,
        newVersionSchemas,
        name: trigger,
      });
      const built = await runDuplicationPhase(r, plan, 'expand');
      return {
        column: step.column,
        newColumn,
        type,
        trigger,
        function: trigger,
        // what this step writes: the new column (trigger and backfill); the legacy column only through down, for writes through the new version
        columnsWritten: [newColumn],
        legacyWrittenBy: 'down, for writes through the new version only',
        duplicated: plan.counterparts.map((c) => c.object),
        built,
      };
    }),
  ],
  // right after the backfill, online: validate the counterparts and build every index over the new column concurrently,
  // so contract's prepare finds them done (it runs the same idempotent phase again for what is left)
  async afterBackfills(ctx) {
    const r = ref(ctx);
    const columns = new Set((await tableColumns(ctx.db, ctx.table)).map((c) => c.name));
    if (!columns.has(ctx.step.column) || !columns.has(newColumnName(ctx.step))) return [];
    const plan = duplicationOf(r, await oldColumnObjects(r));
    // a key to a column another alterColumn changes waits for that parent's unique index: contract's prepare makes it
    const toParent = new Set(plan.actions.filter((a) => a.phase === 'afterBackfill' && a.op === 'addForeignKey').map((a) => a.object));
    return runDuplicationPhase(r, { ...plan, actions: plan.actions.filter((a) => !toParent.has(a.object)) }, 'afterBackfill');
  },
  async revert(ctx) {
    await dropStepTrigger(ctx.db, ctx.table, triggerOf(ctx, 1));
    // everything duplicated lives on the new column and goes with it
    await dropColumn(ctx.db, ctx.table, newColumnName(ctx.step));
  },
  contract: {
    // before anything is dropped, online: validate the counterparts, build the indexes concurrently, then check every object has its counterpart
    async prepare(ctx) {
      const r = ref(ctx);
      if (!ctx.columns.has(ctx.step.column) || !ctx.columns.has(newColumnName(ctx.step))) return;
      const old = await oldColumnObjects(r);
      // a parent's key: the children's foreign keys move first (their contracts before this one)
      await keysMoveFirst(ctx, old);
      // a child's key to a parent's key the rollout changes too: the parent's unique index on its new column first
      for (const done of await parentsReady(ctx, r, old)) ctx.report('built', done);
      const plan = duplicationOf(r, old);
      for (const done of await runDuplicationPhase(r, plan, 'afterBackfill')) ctx.report('built', done);
      const { check } = await contractCheckOf(r);
      for (const c of check.changes) ctx.report('contractChanges', `${c.action} ${c.object}: ${c.detail}`);
      if (!check.isSafe) {
        throw failure(
          FailureType.ContractHeld,
          `step "${ctx.stepId}" (alterColumn on ${ctx.table}): contract would drop objects of ${ctx.step.column} without their counterpart on ${newColumnName(ctx.step)}, so it holds and drops nothing:\n${formatContractCheck(check)}`,
          {
            stepId: ctx.stepId,
            missing: check.missing,
          },
        );
      }
    },
    async release(ctx) {
      const trigger = triggerOf(ctx, 1);
      await dropStepTrigger(ctx.db, ctx.table, trigger);
      ctx.report('droppedTriggers', trigger);
      if (ctx.columns.has(ctx.step.column) && ctx.columns.has(newColumnName(ctx.step))) {
        const r = ref(ctx);
        const plans = contractPlans.get(ctx.db) ?? new Map<string, DuplicationPlan>();
        plans.set(ctx.stepId, duplicationOf(r, await oldColumnObjects(r)));
        contractPlans.set(ctx.db, plans);
      }
    },
    // the old column goes (also with newName), the new one takes the logical name and every counterpart its original's name
    async complete(ctx: ContractContext<AlterColumnStep>) {
      const { step } = ctx;
      const from = newColumnName(step);
      const plan = contractPlans.get(ctx.db)?.get(ctx.stepId);
      if (!ctx.columns.has(from) || !plan) return;
      await swapColumns(
        ref(ctx),
        plan,
        async (column) => {
          await dropColumn(ctx.db, ctx.table, column);
          ctx.columns.delete(column);
          ctx.report('droppedColumns', column);
        },
        async (a, b) => {
          await renameColumn(ctx.db, ctx.table, a, b);
          ctx.columns.delete(a);
          ctx.columns.add(b);
          ctx.report('renamed', `${a} -> ${b}`);
        },
      );
      for (const a of plan.actions.filter((x) => x.phase === 'contract')) ctx.report('attached', `${a.op} ${a.object}`);
      // incoming foreign keys came back NOT VALID: contract validates them after its transaction, each in its own
      for (const a of plan.actions)
        if (a.phase === 'afterContract' && a.op === 'validate') ctx.report('toValidate', JSON.stringify([a.table, a.name]));
    },
  },
};
