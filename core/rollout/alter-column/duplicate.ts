import { rewriteColumnRefs } from '../sql-rewrite';
import { counterpartName, notNullHelperName } from '../object-names';
import type {
  ColumnObjects,
  DuplicationAction,
  DuplicationPlan,
  DuplicationProblem,
  AlteredColumn,
  Phase,
  LaterChanges,
} from './duplication-types';

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
 * core/rollout/alter-column/duplication-types.ts.
 */

export function planDuplication(
  o: ColumnObjects,
  newColumn: string,
  opts: { newType?: string; finalName?: string; altered?: AlteredColumn[]; later?: LaterChanges },
): DuplicationPlan {
  const later = opts.later ?? {};
  const t = o.table;
  const finalName = opts.finalName ?? o.column;
  const isTypeChange = opts.newType !== undefined && normalizeType(opts.newType) !== normalizeType(o.type);
  const rw = (sql: string) => rewriteColumnRefs(sql, { [o.column]: newColumn });
  const actions: DuplicationAction[] = [];
  const problems: DuplicationProblem[] = [];
  const counterparts: DuplicationPlan['counterparts'] = [];
  const col = `${t}.${o.column}`;

  for (const x of o.other) {
    problems.push({
      object: `${x.kind} constraint ${x.name}`,
      message: `${x.kind} constraint ${x.name} (${x.definition}) covers ${col}; stagefill does not carry ${x.kind} constraints to the new column. Drop it in a sql step before the alterColumn and add it again after contract`,
    });
  }
  for (const v of o.views) {
    problems.push({
      object: `view ${v}`,
      message: `view ${v} reads ${col}, so contract could not drop the old column; drop the view before the rollout and create it again afterwards (or read the table through its version views)`,
    });
  }

  // NOT NULL: a NOT VALID check now, validated after the backfill, SET NOT NULL at contract (instant behind the valid check);
  // not carried when a later step of the rollout drops NOT NULL of the new column (what it asks for is the intended state)
  if (o.notNull && later.notNull?.value === false) {
    // a helper a stagefill before this rule added goes
    actions.push({
      phase: 'contract',
      object: `NOT NULL of ${col}`,
      op: 'dropHelperCheck',
      table: t,
      name: notNullHelperName(t, newColumn),
    });
    counterparts.push({
      object: `NOT NULL of ${col}`,
      kind: 'notNull',
      original: o.column,
      counterpart: 'none',
      final: `dropped by step ${later.notNull.step}`,
    });
  } else if (o.notNull) {
    const helper = notNullHelperName(t, newColumn);
    actions.push({ phase: 'expand', object: `NOT NULL of ${col}`, op: 'addNotNullCheck', table: t, name: helper, column: newColumn });
    actions.push({
      phase: 'afterBackfill',
      object: `NOT NULL of ${col}`,
      op: 'validate',
      table: t,
      name: helper,
      fix: `every row's new value must be non-NULL: make up give a value for every row`,
    });
    actions.push({ phase: 'contract', object: `NOT NULL of ${col}`, op: 'setNotNull', table: t, column: newColumn });
    actions.push({ phase: 'contract', object: `NOT NULL of ${col}`, op: 'dropHelperCheck', table: t, name: helper });
    counterparts.push({ object: `NOT NULL of ${col}`, kind: 'notNull', original: o.column, counterpart: helper, final: finalName });
  }

  // DEFAULT: set or dropped by a later step of the rollout on the new column: that one, set at contract instead of the old one's
  if (later.default && o.identity === null) {
    const d = later.default;
    if (d.value !== null)
      actions.push({
        phase: 'contract',
        object: `DEFAULT set by step ${d.step}`,
        op: 'setDefault',
        table: t,
        column: finalName,
        expression: d.value,
      });
    // a serial's sequence still follows the column (a default that no longer reads it leaves it owned, as Postgres would)
    if (o.default !== null && o.sequence !== null && /^nextval\(/i.test(o.default))
      actions.push({
        phase: 'contract',
        object: `sequence ${o.sequence}`,
        op: 'ownSequence',
        sequence: o.sequence,
        table: t,
        column: newColumn,
      });
    counterparts.push({
      object: `DEFAULT of ${col}`,
      kind: 'default',
      original: o.default ?? 'none',
      counterpart: d.value ?? 'none',
      final: d.value === null ? `none (dropped by step ${d.step})` : `${d.value} (set by step ${d.step})`,
    });
  }
  // DEFAULT: cast where the type changed, checked now, set at contract (while both live, inserts through the new version get it from the version view)
  else if (o.default !== null && o.identity === null) {
    const isSerial = o.sequence !== null && /^nextval\(/i.test(o.default);
    const expression = isTypeChange && !isSerial ? `(${o.default})::${opts.newType}` : o.default;
    actions.push({
      phase: 'expand',
      object: `DEFAULT of ${col}`,
      op: 'checkDefault',
      table: t,
      expression,
      type: opts.newType ?? o.type,
      fix: `the default ${o.default} does not convert to ${opts.newType ?? o.type}: drop the default in a sql step before the alterColumn (and set one that fits after contract)`,
    });
    // a sequence behind a key widened to another integer type is widened too (int -> bigint: past 2^31 - 1)
    const asType =
      isTypeChange && sequenceType(opts.newType!) !== null && sequenceType(opts.newType!) !== sequenceType(o.type)
        ? sequenceType(opts.newType!)!
        : undefined;
    if (isSerial)
      actions.push({
        phase: 'contract',
        object: `sequence ${o.sequence}`,
        op: 'ownSequence',
        sequence: o.sequence!,
        table: t,
        column: newColumn,
        ...(asType ? { asType } : {}),
      });
    actions.push({ phase: 'contract', object: `DEFAULT of ${col}`, op: 'setDefault', table: t, column: finalName, expression });
    counterparts.push({ object: `DEFAULT of ${col}`, kind: 'default', original: o.default, counterpart: expression, final: expression });
  }

  for (const c of o.checks) {
    const name = counterpartName(t, c.name);
    const expression = rw(c.definition.replace(/\s*NOT VALID\s*$/, '')).replace(/^CHECK\s*/, '');
    actions.push({
      phase: 'expand',
      object: `CHECK ${c.name}`,
      op: 'addCheck',
      table: t,
      name,
      expression,
      fix: `CHECK ${c.name} ${c.definition} does not hold over ${newColumn}${opts.newType ? ` as ${opts.newType}` : ''}: drop or rewrite the check in a sql step before the alterColumn`,
    });
    if (c.isValid)
      actions.push({
        phase: 'afterBackfill',
        object: `CHECK ${c.name}`,
        op: 'validate',
        table: t,
        name,
        fix: `rows break ${c.definition} over the new column: fix up or the data`,
      });
    actions.push({ phase: 'contract', object: `CHECK ${c.name}`, op: 'renameConstraint', table: t, from: name, to: c.name });
    counterparts.push({ object: `CHECK ${c.name}`, kind: 'check', original: c.name, counterpart: name, final: c.name });
  }

  for (const f of o.foreignKeys) {
    const name = counterpartName(t, f.name);
    const columns = f.columns.map((c) => (c === o.column ? newColumn : c));
    // a self-reference to the altered column follows it too
    const refAltered =
      f.refTable === t ? [] : (opts.altered ?? []).filter((a) => a.table === f.refTable && f.refColumns.includes(a.column));
    const refColumns =
      f.refTable === t
        ? f.refColumns.map((c) => (c === o.column ? newColumn : c))
        : f.refColumns.map((c) => refAltered.find((a) => a.column === c)?.newColumn ?? c);
    // a key to a column the rollout also changes (a child's key to its parent's key) points at the parent's new
    // column: made once the parent's unique index on it is built (contract's prepare), NOT VALID, then validated
    actions.push({
      phase: refAltered.length ? 'afterBackfill' : 'expand',
      object: `FOREIGN KEY ${f.name}`,
      op: 'addForeignKey',
      table: t,
      name,
      columns,
      refTable: f.refTable,
      refColumns,
      tail: f.tail,
      fix: `FOREIGN KEY ${f.name} (${f.definition}) cannot reference ${f.refTable} from ${newColumn}${opts.newType ? ` as ${opts.newType}` : ''}: the types must match; drop the key before the alterColumn or change the referenced column too`,
    });
    if (f.isValid) actions.push({ phase: 'afterBackfill', object: `FOREIGN KEY ${f.name}`, op: 'validate', table: t, name });
    actions.push({ phase: 'contract', object: `FOREIGN KEY ${f.name}`, op: 'renameConstraint', table: t, from: name, to: f.name });
    counterparts.push({ object: `FOREIGN KEY ${f.name}`, kind: 'foreignKey', original: f.name, counterpart: name, final: f.name });
  }

  for (const u of o.uniques) {
    const index = counterpartName(t, u.index);
    const what = `${u.kind === 'primaryKey' ? 'PRIMARY KEY' : 'UNIQUE'} ${u.name}`;
    actions.push({
      phase: 'afterBackfill',
      object: what,
      op: 'createIndex',
      table: t,
      name: index,
      isUnique: true,
      tail: rw(u.indexTail),
      fix: `the new column's values are not unique${u.columns.length > 1 ? ` with ${u.columns.filter((c) => c !== o.column).join(', ')}` : ''}: fix up or the data`,
    });
    actions.push({
      phase: 'contract',
      object: what,
      op: 'attachUnique',
      table: t,
      name: u.name,
      index,
      isPrimaryKey: u.kind === 'primaryKey',
      deferrable: u.deferrable,
      deferred: u.deferred,
    });
    counterparts.push({ object: what, kind: u.kind, original: u.name, counterpart: index, final: u.name });
  }

  for (const x of o.indexes) {
    const name = counterpartName(t, x.name);
    const what = `${x.isUnique ? 'unique index' : 'index'} ${x.name}`;
    actions.push({ phase: 'afterBackfill', object: what, op: 'createIndex', table: t, name, isUnique: x.isUnique, tail: rw(x.indexTail) });
    actions.push({ phase: 'contract', object: what, op: 'renameIndex', table: t, from: name, to: x.name });
    counterparts.push({ object: what, kind: x.isUnique ? 'uniqueIndex' : 'index', original: x.name, counterpart: name, final: x.name });
  }

  if (o.identity !== null && isTypeChange && sequenceType(opts.newType!) === null) {
    problems.push({
      object: `identity of ${col}`,
      message: `${col} is an identity column and ${opts.newType} cannot be one (an identity needs smallint, integer or bigint): drop the identity of ${o.column} in a sql step before the alterColumn (DROP IDENTITY) and give the new column a default after contract`,
    });
  } else if (o.identity !== null) {
    actions.push({
      phase: 'contract',
      object: `identity of ${col}`,
      op: 'addIdentity',
      table: t,
      column: newColumn,
      always: o.identity === 'a',
      fromSequence: o.sequence ?? '',
    });
    // the new identity's sequence takes the old one's name once that one went with the old column
    if (o.sequence)
      actions.push({
        phase: 'contract',
        object: `identity of ${col}`,
        op: 'renameIdentitySequence',
        table: t,
        column: finalName,
        to: o.sequence,
      });
    counterparts.push({
      object: `identity of ${col}`,
      kind: 'identity',
      original: o.sequence ?? o.column,
      counterpart: finalName,
      final: finalName,
    });
  }

  // a comment a later step sets on the new column is the intended one: the old one is copied at expand all the same (the step replaces it)
  if (o.comment !== null) {
    actions.push({ phase: 'expand', object: `comment on ${col}`, op: 'comment', table: t, column: newColumn, text: o.comment });
    const final = later.comment ? (later.comment.value ?? 'none') : o.comment;
    counterparts.push({ object: `comment on ${col}`, kind: 'comment', original: o.comment, counterpart: final, final });
  }
  for (const p of o.privileges) {
    actions.push({
      phase: 'expand',
      object: `${p.privilege} (${o.column}) to ${p.grantee}`,
      op: 'grant',
      table: t,
      column: newColumn,
      privilege: p.privilege,
      grantee: p.grantee,
      isGrantable: p.isGrantable,
    });
    counterparts.push({
      object: `${p.privilege} (${o.column}) to ${p.grantee}`,
      kind: 'privilege',
      original: `${p.grantee}:${p.privilege}`,
      counterpart: `${p.grantee}:${p.privilege}`,
      final: `${p.grantee}:${p.privilege}`,
    });
  }

  // incoming foreign keys reference the old column: at contract they go, and come back over the new one
  for (const f of o.referencedBy) {
    const refColumns = f.refColumns.map((c) => (c === o.column ? finalName : c));
    actions.push({ phase: 'contract', object: `FOREIGN KEY ${f.name} of ${f.table}`, op: 'dropConstraint', table: f.table, name: f.name });
    actions.push({
      phase: 'contract',
      object: `FOREIGN KEY ${f.name} of ${f.table}`,
      op: 'addForeignKey',
      table: f.table,
      name: f.name,
      columns: f.columns,
      refTable: t,
      refColumns,
      tail: f.tail,
    });
    if (f.isValid)
      actions.push({ phase: 'afterContract', object: `FOREIGN KEY ${f.name} of ${f.table}`, op: 'validate', table: f.table, name: f.name });
    counterparts.push({
      object: `FOREIGN KEY ${f.name} of ${f.table}`,
      kind: 'referencedBy',
      original: f.name,
      counterpart: f.name,
      final: f.name,
    });
  }
  if (o.referencedBy.length && !o.uniques.length && !o.indexes.some((x) => x.isUnique && x.columns.length === 1)) {
    problems.push({
      object: `foreign keys referencing ${col}`,
      message: `${o.referencedBy.map((f) => f.name).join(', ')} reference ${col} but it has no unique constraint stagefill can carry over`,
    });
  }

  return {
    table: t,
    oldColumn: o.column,
    newColumn,
    finalName,
    actions: order(actions),
    problems,
    counterparts,
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

/** The sequence type (smallint, integer, bigint) a column type maps to, or null for a type a sequence cannot have. */
export function sequenceType(t: string): string | null {
  const n = normalizeType(t);
  if (['smallint', 'int2'].includes(n)) return 'smallint';
  if (['integer', 'int', 'int4'].includes(n)) return 'integer';
  if (['bigint', 'int8'].includes(n)) return 'bigint';
  return null;
}

function normalizeType(t: string): string {
  return t.toLowerCase().replace(/\s+/g, ' ').trim();
}
