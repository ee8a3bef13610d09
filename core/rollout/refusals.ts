import type { ForeignKeyObject } from './alter-column/duplication-types';
import { newColumnName, finalNameOf } from './object-names';

/**
 * Mistakes in a rollout that are known before anything starts, so `plan` and
 * `start` refuse them (exit 2) instead of the workflow finding them after the
 * data moved: two alterColumns of one column, a dropColumn of a column an
 * alterColumn changes (from the spec alone), a table
 * that does not exist, a child table's key change without a contract of its
 * own (from the catalog the client reads). Pure.
 */

/** A step of the rollout with its id and canonical table (core/rollout/columns.ts PlacedStep, or the spec's graph). */
export interface PlacedRef {
  id: string;
  table: string;
  step: { kind: string };
}

interface AlterRef {
  column: string;
  newName?: string;
  newType?: string;
}

export interface StepFieldProblem {
  /** Index of the step in the spec (for the error path steps.<index>.<field>). */
  index: number;
  field: 'column' | 'newName';
  message: string;
}

/**
 * Two alterColumns of one column (or two that would leave one name for two
 * columns) in one rollout: the second would alter the first one's new column
 * or collide with it, and their triggers and contracts would fight over it.
 * Each problem is reported on the later step.
 */
export function alterColumnConflicts(steps: PlacedRef[]): StepFieldProblem[] {
  const problems: StepFieldProblem[] = [];
  const seen: { id: string; table: string; column: string; finalName: string }[] = [];
  steps.forEach((s, index) => {
    if (s.step.kind !== 'alterColumn') return;
    const a = s.step as unknown as AlterRef;
    const finalName = finalNameOf(a);
    const same = seen.find((e) => e.table === s.table && (e.column === a.column || e.finalName === a.column));
    const fix = `one alterColumn per column: merge them into one step whose newType, newName, up and down give the column's final form`;
    if (same) {
      problems.push({
        index,
        field: 'column',
        message: `step "${s.id}" alters ${s.table}.${a.column}, which step "${same.id}" already alters (${same.column}${same.finalName !== same.column ? ` to ${same.finalName}` : ''}) in this rollout; ${fix}`,
      });
    } else if (finalName !== a.column) {
      const taken = seen.find((e) => e.table === s.table && (e.column === finalName || e.finalName === finalName));
      if (taken)
        problems.push({
          index,
          field: 'newName',
          message: `step "${s.id}" renames ${s.table}.${a.column} to ${finalName}, a name step "${taken.id}" already alters or gives its column in this rollout; pick another newName, or ${fix}`,
        });
    }
    seen.push({ id: s.id, table: s.table, column: a.column, finalName });
  });
  return problems;
}

/**
 * A dropColumn of a column an earlier alterColumn of the rollout changes (its
 * legacy column, the name it gives the new one, or the new column itself)
 * before a contract of that table (a contract is a table's last step, so in
 * practice: in the same rollout): the alterColumn's
 * contract drops the legacy column and renames the new one, the dropColumn's
 * drops whichever of them is there when it runs, so what is left depends on
 * their order. Reported on the dropColumn, naming both steps and the fix.
 */
export function dropOfAlteredColumn(steps: PlacedRef[]): StepFieldProblem[] {
  const problems: StepFieldProblem[] = [];
  steps.forEach((s, index) => {
    if (s.step.kind !== 'dropColumn') return;
    const column = (s.step as unknown as { column: string }).column;
    let alter: { id: string; step: AlterRef } | undefined;
    for (const e of steps.slice(0, index)) {
      if (e.table !== s.table) continue;
      if (e.step.kind === 'contract') alter = undefined;
      else if (e.step.kind === 'alterColumn') {
        const a = e.step as unknown as AlterRef;
        if ([a.column, finalNameOf(a), newColumnName(a)].includes(column)) alter = { id: e.id, step: a };
      }
    }
    if (!alter) return;
    const a = alter.step;
    const renamed = finalNameOf(a) !== a.column;
    const what = renamed ? `${a.column} to ${finalNameOf(a)}` : `${a.column}${a.newType ? ` to ${a.newType}` : ''}`;
    problems.push({
      index,
      field: 'column',
      message: `step "${s.id}" drops ${s.table}.${column}, which step "${alter.id}" alters (${what}) earlier in this rollout: that alterColumn's contract drops ${a.column} and renames its new column ${newColumnName(a)} to ${finalNameOf(a)}, so the two would fight over the column. Fix: to drop the column, remove step "${alter.id}" (nothing to alter in a column that goes)${renamed && column === a.column ? `; to drop only the old ${a.column}, remove step "${s.id}" (the alterColumn's contract drops it)` : ''}; or drop the altered column in a rollout of its own after this one's contract`,
    });
  });
  return problems;
}

/** Kinds that need no table before the rollout: they create it, run the operator's SQL (which may create it) or only read. */
const RUNS_WITHOUT_THE_TABLE = new Set(['createTable', 'sql', 'gate', 'soak', 'approval']);

/**
 * The tables the rollout's steps change that do not exist (`exists` says
 * which do), one message per table naming it, its steps and the fix. A table
 * a createTable or sql step of the rollout works on is not asked for: the
 * rollout may create it itself.
 */
export function missingTableRefusals(steps: PlacedRef[], specTable: string, exists: (table: string) => boolean): string[] {
  const creates = new Set(steps.filter((s) => s.step.kind === 'createTable' || s.step.kind === 'sql').map((s) => s.table));
  const byTable = new Map<string, string[]>();
  for (const s of steps) {
    if (RUNS_WITHOUT_THE_TABLE.has(s.step.kind) || creates.has(s.table) || exists(s.table)) continue;
    byTable.set(s.table, [...(byTable.get(s.table) ?? []), s.id]);
  }
  return [...byTable].map(
    ([table, ids]) =>
      `table ${table} does not exist (step${ids.length > 1 ? 's' : ''} ${ids.map((id) => `"${id}"`).join(', ')} ${ids.length > 1 ? 'work' : 'works'} on it): create it first, or fix ${table === specTable ? "the spec's table" : "the step's table"}`,
  );
}

/**
 * A parent's key change whose child (a table whose column references the
 * parent's, changed by an alterColumn of the rollout) has no contract step:
 * the parent's contract would hold after every backfill ran
 * (steps/alter-column/key-contract.ts), since the child's key must move
 * first. Only when the parent's table is contracted in this rollout.
 */
export function missingChildContracts(
  steps: PlacedRef[],
  parent: { id: string; table: string; column: string },
  referencedBy: Pick<ForeignKeyObject, 'name' | 'table' | 'columns' | 'refColumns'>[],
): { object: string; message: string }[] {
  const contractOf = (table: string) => steps.find((s) => s.table === table && s.step.kind === 'contract');
  const parentContract = contractOf(parent.table);
  if (!parentContract) return [];
  const out: { object: string; message: string }[] = [];
  for (const f of referencedBy) {
    if (f.table === parent.table || contractOf(f.table)) continue;
    f.columns.forEach((column, k) => {
      if (f.refColumns[k] !== parent.column) return;
      const child = steps.find(
        (s) => s.table === f.table && s.step.kind === 'alterColumn' && (s.step as unknown as AlterRef).column === column,
      );
      if (!child) return;
      const id = `contract-${f.table.split('.').pop()}`.replace(/_/g, '-');
      out.push({
        object: `FOREIGN KEY ${f.name} of ${f.table}`,
        message: `step "${child.id}" changes ${f.table}.${column}, whose FOREIGN KEY ${f.name} references ${parent.table}.${parent.column} (step "${parent.id}"), but the rollout has no contract step for ${f.table}: the contract of ${parent.table} (step "${parentContract.id}") would hold after every backfill ran, since a child's key moves first. Fix: add { id: ${id}, kind: contract, table: ${f.table} } and make step "${parentContract.id}" dependsOn it (as in examples/orders-id-bigint.yaml)`,
      });
    });
  }
  return out;
}
