import type { StepRef } from '../types';
import type { AlteredColumn, ColumnObjects } from '../../core/rollout/alter-column/duplication-types';
import { keyChangesOf, leftOutReferences, LeftOutReference } from '../../core/rollout/alter-column/key-references';
import { newColumnOf, AlterColumnStep } from './schema';

/**
 * A key change across tables (a parent's primary key and the children's
 * columns referencing it, each an alterColumn of the same rollout): which
 * columns the other alterColumn steps change, so that a child's foreign key
 * follows to the parent's new column, and which step changes a given column.
 */

type AnyStep = StepRef<{ kind: string }>;

function alterSteps(all: AnyStep[]): StepRef<AlterColumnStep>[] {
  return all.filter((s) => s.step.kind === 'alterColumn') as unknown as StepRef<AlterColumnStep>[];
}

/** Every column an alterColumn of the rollout changes on a table other than `table`. */
export function alteredElsewhere(all: AnyStep[], table: string): AlteredColumn[] {
  return alterSteps(all)
    .filter((s) => s.table !== table)
    .map((s) => ({ table: s.table, column: s.step.column, newColumn: newColumnOf(s.step) }));
}

/** The alterColumn step of the rollout that changes `table`.`column`, if any. */
export function alterStepOf(all: AnyStep[], table: string, column: string): StepRef<AlterColumnStep> | undefined {
  return alterSteps(all).find((s) => s.table === table && s.step.column === column);
}

/** The contract step of `table`, if the rollout has one. */
export function contractOf(all: AnyStep[], table: string): AnyStep | undefined {
  return all.find((s) => s.table === table && s.step.kind === 'contract');
}

/**
 * The columns referencing this step's column (the foreign keys the catalog
 * lists now) that the rollout does not change to its new type: the step
 * refuses at expand and its contract holds on them (core/rollout/alter-column/key-references.ts).
 */
export function leftOutOf(all: AnyStep[], ref: StepRef<AlterColumnStep>, old: ColumnObjects): LeftOutReference[] {
  const changes = keyChangesOf(all);
  const self = changes.find((c) => c.id === ref.id) ?? keyChangesOf([ref])[0];
  return leftOutReferences(self, old.type, old.referencedBy, changes);
}
