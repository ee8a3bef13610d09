/**
 * The constraints and indexes over the altered column carried to its new
 * column (part of planDuplication, core/rollout/alter-column/duplicate.ts):
 * CHECKs, outgoing and incoming FOREIGN KEYs, UNIQUE and PRIMARY KEY, indexes.
 * Pure; each part adds its actions, counterparts and problems to the draft
 * in the order the plan lists them.
 */
import { counterpartName } from '../object-names';
import type { Draft } from './duplicate';

/** CHECK constraints: NOT VALID over the new column at expand, validated after the backfill, renamed at contract. */
export function carryChecks(draft: Draft): void {
  const { o, t, newColumn, rw, opts, actions, counterparts } = draft;
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
}

/** Outgoing FOREIGN KEYs: NOT VALID over the new column (after the backfill when they reference a column the rollout also changes). */
export function carryForeignKeys(draft: Draft): void {
  const { o, t, newColumn, opts, actions, counterparts } = draft;
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
}

/** UNIQUE and PRIMARY KEY: the index built concurrently after the backfill, attached USING INDEX at contract. */
export function carryUniques(draft: Draft): void {
  const { o, t, rw, actions, counterparts } = draft;
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
}

/** Indexes: built concurrently after the backfill, renamed at contract. */
export function carryIndexes(draft: Draft): void {
  const { o, t, rw, actions, counterparts } = draft;
  for (const x of o.indexes) {
    const name = counterpartName(t, x.name);
    const what = `${x.isUnique ? 'unique index' : 'index'} ${x.name}`;
    actions.push({ phase: 'afterBackfill', object: what, op: 'createIndex', table: t, name, isUnique: x.isUnique, tail: rw(x.indexTail) });
    actions.push({ phase: 'contract', object: what, op: 'renameIndex', table: t, from: name, to: x.name });
    counterparts.push({ object: what, kind: x.isUnique ? 'uniqueIndex' : 'index', original: x.name, counterpart: name, final: x.name });
  }
}

/** Incoming FOREIGN KEYs: dropped at contract and added again over the new column, validated after it. */
export function carryIncomingKeys(draft: Draft): void {
  const { o, t, col, finalName, actions, problems, counterparts } = draft;
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
}
