import type { StepActions, ContractContext, StepContext } from '../types';
import type { ContractStep } from './schema';
import { tableColumns, dropColumn } from '../../db/ddl';
import { stepActions } from '../actions';

/**
 * Irreversible: each other step of the table gives up what it kept for the old
 * shape through its contract hooks, in two passes in spec order: `release`
 * (triggers, older views), then this step's own `drops`, then `complete`
 * (final drops and renames).
 */
export const contractActions: StepActions<ContractStep> = {
  irreversible: 'dropped the old columns',
  phases: [
    {
      name: 'apply',
      transactional: true,
      async run(ctx) {
        const { table, db } = ctx;
        const others = ctx.allSteps.filter((s) => s.table === table && s.id !== ctx.stepId);
        const columns = new Set((await tableColumns(db, table)).map((c) => c.name));
        const drops = new Set(ctx.step.drops ?? []);
        const report: Record<string, string[]> = { droppedTriggers: [], droppedSchemas: [], droppedColumns: [], renamed: [] };
        const hookContext = (stepId: string): ContractContext<{ kind: string }> => ({
          ...(ctx.contextOf(stepId) as StepContext<{ kind: string }>),
          columns,
          drops,
          report: (key, item) => (report[key] ??= []).push(item),
        });
        for (const s of others) await stepActions(s.step.kind).contract?.release?.(hookContext(s.id));
        for (const c of ctx.step.drops ?? []) {
          if (!columns.has(c)) continue;
          await dropColumn(db, table, c);
          columns.delete(c);
          report.droppedColumns.push(c);
        }
        for (const s of others) await stepActions(s.step.kind).contract?.complete?.(hookContext(s.id));
        return report;
      },
    },
    {
      // CONCURRENTLY cannot run in a transaction: a phase of its own, after the drops above committed
      name: 'concurrent',
      doing: 'contract statements outside a transaction (DROP INDEX CONCURRENTLY)',
      transactional: false,
      async run(ctx) {
        const { table, db } = ctx;
        const others = ctx.allSteps.filter((s) => s.table === table && s.id !== ctx.stepId && stepActions(s.step.kind).contract?.outsideTransaction);
        if (!others.length) return {};
        const columns = new Set((await tableColumns(db, table)).map((c) => c.name));
        const report: Record<string, string[]> = {};
        for (const s of others) {
          await stepActions(s.step.kind).contract!.outsideTransaction!({
            ...(ctx.contextOf(s.id) as StepContext<{ kind: string }>),
            db,
            columns,
            drops: new Set(ctx.step.drops ?? []),
            report: (key, item) => (report[key] ??= []).push(item),
          });
        }
        return report;
      },
    },
  ],
};
