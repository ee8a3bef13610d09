import { rewriteColumnRefs } from '../sql-rewrite';
import type {
  ColumnObjects,
  DuplicationAction,
  DuplicationPlan,
  DuplicationProblem,
  AlteredColumn,
  Phase,
  LaterChanges,
} from './duplication-types';
import { carryComment, carryDefault, carryIdentity, carryNotNull, carryPrivileges, normalizeType } from './duplicate-column';
import { carryChecks, carryForeignKeys, carryIncomingKeys, carryIndexes, carryUniques } from './duplicate-constraints';

/**
 * The new column of an alterColumn is a full duplicate of the old one
 * (pgroll's duplicate.go): every constraint, index, default, identity,
 * comment and privilege of the old column gets a counterpart over the new
 * column, built online, and contract swaps them in one short transaction.
 * Pure: from the objects the catalog lists (db/rollout/column-objects.ts) to a plan
 * of actions the db layer runs (db/rollout/duplicate.ts).
 *
 * When each object is built:
 * - expand (the alterColumn's own transaction, with ADD COLUMN; a CHECK or
 *   a FOREIGN KEY that does not hold over the new type fails here, before
 *   any data moves): CHECKs as NOT VALID (rewritten over the new column,
 *   multi-column ones keep their other columns), NOT NULL as a NOT VALID
 *   `CHECK (new IS NOT NULL)`, outgoing FOREIGN KEYs as NOT VALID, the
 *   comment, column privileges; the DEFAULT cast to the new type is
 *   type-checked.
 * - afterBackfill (the alterColumn step, once its backfill is done): VALIDATE
 *   each of those (a scan that lets writes through), then every index and
 *   unique index `CREATE ... INDEX CONCURRENTLY` over the new column (also
 *   partial and expression ones, and multi-column ones in the same column
 *   order).
 * - contract (one transaction under lock_timeout): incoming FOREIGN KEYs
 *   dropped (they reference the old column), a serial's sequence handed to
 *   the new column, SET NOT NULL (instant behind the validated check, which
 *   then goes), identity continuing the old one's sequence; the old column
 *   dropped (its objects with it), the new column renamed to the logical
 *   name, DEFAULT, every counterpart
 *   renamed to its original's name, UNIQUE and PRIMARY KEY attached
 *   `USING INDEX`, incoming FOREIGN KEYs added again NOT VALID over the new
 *   column.
 * - afterContract: VALIDATE the incoming FOREIGN KEYs.
 *
 * An outgoing FOREIGN KEY to a column another alterColumn of the same
 * rollout changes (`altered`: a child's key to its parent's key) is made
 * over the new column to the parent's new column in afterBackfill instead
 * (the parent's unique index on it built first, steps/alter-column/
 * key-contract.ts), NOT VALID then validated; the child's contract runs
 * before the parent's, so the parent's old column has no incoming key left.
 * The shapes (the column's objects, the actions, the plan) are in
 * core/rollout/alter-column/duplication-types.ts; the column's own properties
 * are carried by duplicate-column.ts, its constraints and indexes by
 * duplicate-constraints.ts.
 */

/** One duplication being planned: what it reads (the old column's objects, the names, the options) and what it adds up. */
export interface Draft {
  o: ColumnObjects;
  /** The table, and `table.column` as messages name the old column. */
  t: string;
  col: string;
  newColumn: string;
  /** The column's name after contract: the logical name, or the new name a rename gives it. */
  finalName: string;
  isTypeChange: boolean;
  /** SQL over the old column rewritten over the new one. */
  rw: (sql: string) => string;
  opts: { newType?: string; finalName?: string; altered?: AlteredColumn[]; later?: LaterChanges };
  later: LaterChanges;
  actions: DuplicationAction[];
  problems: DuplicationProblem[];
  counterparts: DuplicationPlan['counterparts'];
}

export function planDuplication(
  o: ColumnObjects,
  newColumn: string,
  opts: { newType?: string; finalName?: string; altered?: AlteredColumn[]; later?: LaterChanges },
): DuplicationPlan {
  const later = opts.later ?? {};
  const t = o.table;
  const col = `${t}.${o.column}`;
  const draft: Draft = {
    o,
    t,
    col,
    newColumn,
    finalName: opts.finalName ?? o.column,
    isTypeChange: opts.newType !== undefined && normalizeType(opts.newType) !== normalizeType(o.type),
    rw: (sql: string) => rewriteColumnRefs(sql, { [o.column]: newColumn }),
    opts,
    later,
    actions: [],
    problems: [],
    counterparts: [],
  };

  for (const x of o.other) {
    draft.problems.push({
      object: `${x.kind} constraint ${x.name}`,
      message: `${x.kind} constraint ${x.name} (${x.definition}) covers ${col}; stagefill does not carry ${x.kind} constraints to the new column. Drop it in a sql step before the alterColumn and add it again after contract`,
    });
  }
  for (const v of o.views) {
    draft.problems.push({
      object: `view ${v}`,
      message: `view ${v} reads ${col}, so contract could not drop the old column; drop the view before the rollout and create it again afterwards (or read the table through its version views)`,
    });
  }
  // in this order: the plan lists actions of one phase (and contract's of one rank) in the order they are added
  carryNotNull(draft);
  carryDefault(draft);
  carryChecks(draft);
  carryForeignKeys(draft);
  carryUniques(draft);
  carryIndexes(draft);
  carryIdentity(draft);
  carryComment(draft);
  carryPrivileges(draft);
  carryIncomingKeys(draft);

  return {
    table: t,
    oldColumn: o.column,
    newColumn,
    finalName: draft.finalName,
    actions: order(draft.actions),
    problems: draft.problems,
    counterparts: draft.counterparts,
    ...(Object.keys(later).length ? { later } : {}),
  };
}

/** Contract's order inside its one transaction; the other phases keep the order above. */
const CONTRACT_ORDER: DuplicationAction['op'][] = [
  'dropConstraint',
  'ownSequence',
  'setNotNull',
  'dropHelperCheck',
  'addIdentity',
  'setDefault',
  'renameIdentitySequence',
  'renameConstraint',
  'renameIndex',
  'attachUnique',
  'addForeignKey',
];

function order(actions: DuplicationAction[]): DuplicationAction[] {
  const rank = (a: DuplicationAction) => (a.phase === 'contract' ? CONTRACT_ORDER.indexOf(a.op) : 0);
  const phases: Phase[] = ['expand', 'afterBackfill', 'contract', 'afterContract'];
  return phases.flatMap((p) =>
    actions
      .map((a, i) => ({ a, i }))
      .filter((x) => x.a.phase === p)
      // the helper NOT NULL check is dropped after SET NOT NULL; incoming keys before the column drop
      .sort((x, y) => rank(x.a) - rank(y.a) || x.i - y.i)
      .map((x) => x.a),
  );
}

/** Contract's statements in `DuplicationPlan` order, split around the column drop: what must happen before it and after it. */
export function contractActions(plan: DuplicationPlan): { beforeDrop: DuplicationAction[]; afterDrop: DuplicationAction[] } {
  const contract = plan.actions.filter((a) => a.phase === 'contract');
  // incoming keys and a serial's sequence must move before the old column goes; NOT NULL and identity need the
  // old identity's sequence, which goes with the old column
  const BEFORE = new Set<DuplicationAction['op']>(['dropConstraint', 'ownSequence', 'setNotNull', 'dropHelperCheck', 'addIdentity']);
  const isBefore = (a: DuplicationAction) => BEFORE.has(a.op);
  return { beforeDrop: contract.filter(isBefore), afterDrop: contract.filter((a) => !isBefore(a)) };
}
