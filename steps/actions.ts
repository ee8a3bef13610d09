import type { StepActions } from './types';
import type { StepKind, AnyStep } from '.';
import { addColumnActions } from './add-column/apply';
import { alterColumnActions } from './alter-column/apply';
import { setNotNullActions } from './set-not-null/apply';
import { addCheckActions } from './add-check/apply';
import { sqlActions } from './sql/apply';
import { exposeActions } from './expose/apply';
import { contractActions } from './contract/apply';
import { createIndexActions } from './create-index/apply';
import { dropIndexActions } from './drop-index/apply';
import { addUniqueActions } from './add-unique/apply';
import { addForeignKeyActions } from './add-foreign-key/apply';
import { setDefaultActions } from './set-default/apply';
import { dropDefaultActions } from './drop-default/apply';
import { dropNotNullActions } from './drop-not-null/apply';
import { dropConstraintActions } from './drop-constraint/apply';
import { renameConstraintActions } from './rename-constraint/apply';
import { setCommentActions } from './set-comment/apply';
import { createTableActions } from './create-table/apply';
import { dropColumnActions } from './drop-column/apply';
import { dropTableActions } from './drop-table/apply';
import { renameTableActions } from './rename-table/apply';

/** Kinds the workflow runs itself (backfill, gate, soak, approval): applying one only records it. */
const nothingToApply: StepActions<unknown> = { phases: [] };

/**
 * The activity side of each kind in steps/index.ts: typed against that list,
 * so a kind registered there without its actions here does not compile.
 * Only activities import this file (it pulls in pg).
 */
const ACTIONS: { [K in StepKind]: StepActions<Extract<AnyStep, { kind: K }>> } = {
  addColumn: addColumnActions,
  alterColumn: alterColumnActions,
  setNotNull: setNotNullActions,
  addCheck: addCheckActions,
  createIndex: createIndexActions,
  dropIndex: dropIndexActions,
  addUnique: addUniqueActions,
  addForeignKey: addForeignKeyActions,
  setDefault: setDefaultActions,
  dropDefault: dropDefaultActions,
  dropNotNull: dropNotNullActions,
  dropConstraint: dropConstraintActions,
  renameConstraint: renameConstraintActions,
  setComment: setCommentActions,
  sql: sqlActions,
  backfill: nothingToApply,
  gate: nothingToApply,
  expose: exposeActions,
  soak: nothingToApply,
  approval: nothingToApply,
  contract: contractActions,
  createTable: createTableActions,
  dropColumn: dropColumnActions,
  dropTable: dropTableActions,
  renameTable: renameTableActions,
};

export function stepActions(kind: string): StepActions<{ kind: string }> {
  const a = (ACTIONS as Record<string, StepActions<never>>)[kind];
  if (!a) throw new Error(`step kind "${kind}" has no actions registered in steps/actions.ts`);
  return a as unknown as StepActions<{ kind: string }>;
}
