import type { AlteredColumn, ColumnObjects, DuplicationPlan } from './duplication-types';
import { planDuplication } from './duplicate';
import { keyChangesOf, leftOutReferences, type LeftOutReference } from './key-references';
import { laterChangesOf } from '../columns';
import { newColumnName, finalNameOf } from '../object-names';

/**
 * alterColumn's one planner: what the step's duplication does with the old
 * column's objects (the catalog lists them), given the rollout's steps. The
 * step's expand, its afterBackfill work and contract (steps/alter-column/)
 * and `stagefill plan`'s preview of contract (client/contract-plan.ts) all
 * call `planColumnChange`, so plan cannot drift from apply. Also the key
 * graph across tables: which columns the other alterColumn steps change (a
 * child's key follows to the parent's new column), which step changes a
 * column, which table has its contract. Pure.
 */

/** A step of the rollout with its id and canonical table (a StepRef, a PlacedStep). */
export interface RolloutStepRef {
  id: string;
  table: string;
  step: { kind: string };
}

/** What planning reads of an alterColumn step. */
export interface AlterColumnShape {
  kind: 'alterColumn';
  column: string;
  newName?: string;
  newType?: string;
  up: string;
  down: string;
}

export type AlterColumnRef = Omit<RolloutStepRef, 'step'> & { step: AlterColumnShape };

function alterSteps(all: RolloutStepRef[]): AlterColumnRef[] {
  return all.filter((s): s is AlterColumnRef => s.step.kind === 'alterColumn');
}

/** Every column an alterColumn of the rollout changes on a table other than `table`. */
export function alteredElsewhere(all: RolloutStepRef[], table: string): AlteredColumn[] {
  return alterSteps(all)
    .filter((s) => s.table !== table)
    .map((s) => ({ table: s.table, column: s.step.column, newColumn: newColumnName(s.step) }));
}

/** The alterColumn step of the rollout that changes `table`.`column`, if any. */
export function alterStepOf(all: RolloutStepRef[], table: string, column: string): AlterColumnRef | undefined {
  return alterSteps(all).find((s) => s.table === table && s.step.column === column);
}

/** The contract step of `table`, if the rollout has one. */
export function contractOf(all: RolloutStepRef[], table: string): RolloutStepRef | undefined {
  return all.find((s) => s.table === table && s.step.kind === 'contract');
}

/**
 * The duplication plan of alterColumn step `stepId` of the rollout `all`
 * (spec order, logical names resolved) over its old column's `objects`:
 * its new column, the name contract gives it, the keys it references that
 * other alterColumn steps change, what later steps set on its new column.
 */
export function planColumnChange(all: RolloutStepRef[], stepId: string, objects: ColumnObjects): DuplicationPlan {
  const index = all.findIndex((s) => s.id === stepId);
  const self = all[index];
  if (!self || self.step.kind !== 'alterColumn') throw new Error(`planColumnChange: step "${stepId}" is not an alterColumn of the rollout`);
  const step = self.step as AlterColumnShape;
  const newColumn = newColumnName(step);
  return planDuplication(objects, newColumn, {
    newType: step.newType,
    finalName: finalNameOf(step),
    altered: alteredElsewhere(all, self.table),
    later: laterChangesOf(all, index, self.table, newColumn),
  });
}

/**
 * The columns referencing this step's column (the foreign keys the catalog
 * lists now) that the rollout does not change to its new type: the step
 * refuses at expand, `plan` and `start` refuse the rollout, and its contract
 * holds on them (key-references.ts).
 */
export function leftOutOf(all: RolloutStepRef[], ref: AlterColumnRef, old: ColumnObjects): LeftOutReference[] {
  const changes = keyChangesOf(all);
  const self = changes.find((c) => c.id === ref.id) ?? keyChangesOf([ref])[0];
  return self ? leftOutReferences(self, old.type, old.referencedBy, changes) : [];
}
