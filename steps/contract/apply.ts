import { inTransaction, type StepActions, type ContractContext, type StepContext } from '../types';
import type { ContractStep } from './schema';
import { tableColumns, dropColumn, validateConstraint } from '../../db/rollout/ddl';
import { classifyPgError, pgMessage } from '../../db/errors';

/**
 * Irreversible: each other step of the table gives up what it kept for the
 * old shape through its contract hooks, spec order, in three phases:
 *
 * - `prepare`, online, nothing dropped: each step's `prepare` builds and
 *   checks what the swap needs (alterColumn: validated counterparts, unique
 *   and plain indexes built CONCURRENTLY, and the check that every object of
 *   the old column has its counterpart; when one is missing the rollout
 *   holds, ContractHeld).
 * - `apply`, one short transaction under lock_timeout (retried while live
 *   traffic holds the lock): `release` (triggers, older views), this step's
 *   own `drops`, then `complete` (final drops, renames, attaches).
 * - `concurrent`, outside a transaction: each step's `outsideTransaction`
 *   (DROP INDEX CONCURRENTLY), and the foreign keys added again NOT VALID
 *   validated, each in its own transaction; one that fails stays NOT VALID
 *   (still enforced for new rows) and is reported: the swap is done.
 */

interface Report {
  [key: string]: string[];
}

function hookContexts(ctx: StepContext<ContractStep>, columns: Set<string>, report: Report) {
  const others = ctx.allSteps.filter((s) => s.table === ctx.table && s.id !== ctx.stepId);
  const drops = new Set(ctx.step.drops ?? []);
  const hookContext = (stepId: string): ContractContext<{ kind: string }> => ({
    // in a phase outside a transaction, contextOf's db is the step's transaction: hooks use this phase's connection
    ...(ctx.contextOf(stepId) as StepContext<{ kind: string }>),
    db: ctx.db,
    columns,
    drops,
    report: (key, item) => (report[key] ??= []).push(item),
  });
  return { others, hookContext };
}

export const contractActions: StepActions<ContractStep> = {
  irreversible: 'dropped the old columns',
  phases: [
    {
      name: 'prepare',
      doing: 'prepare (counterparts validated, indexes built concurrently, every object checked)',
      transactional: false,
      async run(ctx) {
        const columns = new Set((await tableColumns(ctx.db, ctx.table)).map((c) => c.name));
        const report: Report = {};
        const { others, hookContext } = hookContexts(ctx, columns, report);
        for (const s of others) await ctx.actionsOf(s.step.kind).contract?.prepare?.(hookContext(s.id));
        return report;
      },
    },
    inTransaction('apply', async (ctx) => {
      const { table, db } = ctx;
      const columns = new Set((await tableColumns(db, table)).map((c) => c.name));
      const droppedColumns: string[] = [];
      const report: Report = { droppedTriggers: [], droppedSchemas: [], droppedColumns, renamed: [] };
      const { others, hookContext } = hookContexts(ctx, columns, report);
      // an alterColumn's old column goes in its own complete, after its counterparts are in place: not here
      const altered = new Set(
        others.flatMap((s) => (s.step.kind === 'alterColumn' ? [(s.step as unknown as { column: string }).column] : [])),
      );
      for (const s of others) await ctx.actionsOf(s.step.kind).contract?.release?.(hookContext(s.id));
      for (const c of ctx.step.drops ?? []) {
        if (!columns.has(c) || altered.has(c)) continue;
        await dropColumn(db, table, c);
        columns.delete(c);
        droppedColumns.push(c);
      }
      for (const s of others) await ctx.actionsOf(s.step.kind).contract?.complete?.(hookContext(s.id));
      return report;
    }),
    {
      // CONCURRENTLY cannot run in a transaction: a phase of its own, after the drops above committed
      name: 'concurrent',
      doing: 'contract statements outside a transaction (DROP INDEX CONCURRENTLY, VALIDATE of the foreign keys added again)',
      transactional: false,
      async run(ctx) {
        const columns = new Set((await tableColumns(ctx.db, ctx.table)).map((c) => c.name));
        const validated: string[] = [];
        const notValidated: string[] = [];
        const report: Report = { validated, notValidated };
        const { others, hookContext } = hookContexts(ctx, columns, report);
        for (const s of others) await ctx.actionsOf(s.step.kind).contract?.outsideTransaction?.(hookContext(s.id));
        for (const item of (ctx.detail.toValidate as string[] | undefined) ?? []) {
          const [table, name] = JSON.parse(item) as [string, string];
          try {
            await validateConstraint(ctx.db, table, name);
            validated.push(`${table}.${name}`);
          } catch (err) {
            if (classifyPgError(err) !== 'fatal') throw err;
            notValidated.push(`${table}.${name}: ${pgMessage(err)}`);
          }
        }
        return report;
      },
    },
  ],
};
