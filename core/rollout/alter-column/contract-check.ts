import type { ColumnObjects, DuplicationPlan } from './duplication-types';
import { notNullHelperName } from '../object-names';

/**
 * Contract never drops silently. Given the old column's objects, the new
 * column's objects (both read from the catalog just before contract) and the
 * duplication plan, list every object contract will drop, rename, attach or
 * set, and refuse when an object of the old column would go without its
 * counterpart in place on the new one. Pure.
 */

export interface ContractChange {
  action: 'drop' | 'rename' | 'attach' | 'set' | 'recreate';
  object: string;
  detail: string;
}

export interface ContractCheck {
  table: string;
  column: string;
  changes: ContractChange[];
  /** Objects of the old column whose counterpart is missing or not valid: contract must not run. */
  missing: { object: string; why: string }[];
  isSafe: boolean;
}

export function checkContract(old: ColumnObjects, now: ColumnObjects, plan: DuplicationPlan): ContractCheck {
  // size: a table of cases, one per kind of object the duplication carries, in planDuplication's order, so the two read side by side
  const changes: ContractChange[] = [];
  const missing: ContractCheck['missing'] = [];
  const col = `${old.table}.${old.column}`;
  if (!now.exists) {
    return {
      table: old.table,
      column: old.column,
      changes,
      missing: [{ object: `column ${plan.newColumn}`, why: `the new column ${plan.newColumn} does not exist` }],
      isSafe: false,
    };
  }
  changes.push({
    action: 'drop',
    object: `column ${col}`,
    detail: `${old.type}${old.notNull ? ' NOT NULL' : ''}${old.default !== null ? ` DEFAULT ${old.default}` : ''}`,
  });
  if (plan.newColumn !== plan.finalName)
    changes.push({ action: 'rename', object: `column ${plan.newColumn}`, detail: `to ${plan.finalName}` });

  const checkNamed = (name: string) => now.checks.find((c) => c.name === name);
  const indexNamed = (name: string) => now.indexes.find((x) => x.name === name);
  const fkNamed = (name: string) => now.foreignKeys.find((f) => f.name === name);

  const later = plan.later ?? {};
  if (old.notNull && later.notNull?.value === false) {
    changes.push({
      action: 'drop',
      object: `NOT NULL of ${col}`,
      detail: `${plan.finalName} stays nullable: step ${later.notNull.step} dropped NOT NULL`,
    });
  } else if (old.notNull) {
    const helper = checkNamed(notNullHelperName(old.table, plan.newColumn));
    if (now.notNull) changes.push({ action: 'set', object: `NOT NULL of ${col}`, detail: `${plan.finalName} is NOT NULL already` });
    else if (!helper)
      missing.push({ object: `NOT NULL of ${col}`, why: `${plan.newColumn} has neither NOT NULL nor its NOT NULL helper check` });
    else if (!helper.isValid)
      missing.push({ object: `NOT NULL of ${col}`, why: `the NOT NULL helper check on ${plan.newColumn} is not validated yet` });
    else
      changes.push({
        action: 'set',
        object: `NOT NULL of ${col}`,
        detail: `SET NOT NULL on ${plan.finalName} (behind the validated check, which then goes)`,
      });
  }
  if (later.default && old.identity === null) {
    const d = later.default;
    changes.push({
      action: 'set',
      object: `DEFAULT of ${col}`,
      detail:
        d.value === null
          ? `${plan.finalName} has no default: step ${d.step} dropped it`
          : `${plan.finalName} DEFAULT ${d.value}, as step ${d.step} set it (not the old column's)`,
    });
  } else if (old.default !== null && old.identity === null) {
    const p = plan.counterparts.find((c) => c.kind === 'default');
    changes.push({ action: 'set', object: `DEFAULT of ${col}`, detail: `${plan.finalName} DEFAULT ${p?.final ?? old.default}` });
  }
  for (const c of old.checks) {
    const cp = plan.counterparts.find((x) => x.kind === 'check' && x.original === c.name);
    const found = cp && checkNamed(cp.counterpart);
    changes.push({ action: 'drop', object: `CHECK ${c.name}`, detail: c.definition });
    if (!found)
      missing.push({ object: `CHECK ${c.name}`, why: `no counterpart ${cp?.counterpart ?? '(none planned)'} over ${plan.newColumn}` });
    else if (c.isValid && !found.isValid)
      missing.push({ object: `CHECK ${c.name}`, why: `its counterpart ${found.name} is not validated` });
    else changes.push({ action: 'rename', object: `CHECK ${found.name}`, detail: `to ${c.name}: ${found.definition}` });
  }
  for (const f of old.foreignKeys) {
    const cp = plan.counterparts.find((x) => x.kind === 'foreignKey' && x.original === f.name);
    const found = cp && fkNamed(cp.counterpart);
    changes.push({ action: 'drop', object: `FOREIGN KEY ${f.name}`, detail: f.definition });
    if (!found)
      missing.push({
        object: `FOREIGN KEY ${f.name}`,
        why: `no counterpart ${cp?.counterpart ?? '(none planned)'} over ${plan.newColumn}`,
      });
    else if (f.isValid && !found.isValid)
      missing.push({ object: `FOREIGN KEY ${f.name}`, why: `its counterpart ${found.name} is not validated` });
    else changes.push({ action: 'rename', object: `FOREIGN KEY ${found.name}`, detail: `to ${f.name}: ${found.definition}` });
  }
  for (const u of old.uniques) {
    const what = `${u.kind === 'primaryKey' ? 'PRIMARY KEY' : 'UNIQUE'} ${u.name}`;
    const cp = plan.counterparts.find((x) => (x.kind === 'unique' || x.kind === 'primaryKey') && x.original === u.name);
    const found = cp && indexNamed(cp.counterpart);
    changes.push({ action: 'drop', object: what, detail: u.definition });
    if (!found) missing.push({ object: what, why: `no unique index ${cp?.counterpart ?? '(none planned)'} over ${plan.newColumn}` });
    else if (!found.isValid || !found.isUnique)
      missing.push({
        object: what,
        why: `the index ${found.name} is ${found.isValid ? 'not unique' : 'INVALID (a failed concurrent build)'}`,
      });
    else
      changes.push({
        action: 'attach',
        object: what,
        detail: `ADD CONSTRAINT ${u.name} ${u.kind === 'primaryKey' ? 'PRIMARY KEY' : 'UNIQUE'} USING INDEX ${found.name}`,
      });
  }
  for (const x of old.indexes) {
    const what = `${x.isUnique ? 'unique index' : 'index'} ${x.name}`;
    const cp = plan.counterparts.find((c) => (c.kind === 'index' || c.kind === 'uniqueIndex') && c.original === x.name);
    const found = cp && indexNamed(cp.counterpart);
    changes.push({ action: 'drop', object: what, detail: x.definition });
    if (!found) missing.push({ object: what, why: `no counterpart ${cp?.counterpart ?? '(none planned)'} over ${plan.newColumn}` });
    else if (!found.isValid) missing.push({ object: what, why: `its counterpart ${found.name} is INVALID (a failed concurrent build)` });
    else changes.push({ action: 'rename', object: `index ${found.name}`, detail: `to ${x.name}: ${found.definition}` });
  }
  for (const f of old.referencedBy) {
    changes.push({
      action: 'recreate',
      object: `FOREIGN KEY ${f.name} of ${f.table}`,
      detail: `dropped and added again over ${plan.finalName} (NOT VALID, then VALIDATE)`,
    });
  }
  if (old.identity !== null)
    changes.push({
      action: 'set',
      object: `identity of ${col}`,
      detail: `${plan.finalName} GENERATED ${old.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY, continuing after ${old.sequence}'s last value (its sequence then takes the name ${old.sequence})`,
    });
  if (old.sequence !== null && old.identity === null) {
    const own = plan.actions.find((a) => a.op === 'ownSequence');
    const asType = own && own.op === 'ownSequence' && own.asType ? `, AS ${own.asType}` : '';
    changes.push({ action: 'set', object: `sequence ${old.sequence}`, detail: `OWNED BY ${old.table}.${plan.finalName}${asType}` });
  }
  if (later.comment) {
    // what a step of the rollout set on the new column is the intended state, not a missing counterpart
    changes.push({
      action: 'set',
      object: `comment on ${col}`,
      detail: `${plan.finalName} keeps ${now.comment === null ? 'no comment' : JSON.stringify(now.comment)}, as step ${later.comment.step} set it`,
    });
  } else if (old.comment !== null) {
    if (now.comment !== old.comment)
      missing.push({
        object: `comment on ${col}`,
        why: `${plan.newColumn} has ${now.comment === null ? 'no comment' : `the comment ${JSON.stringify(now.comment)}`}`,
      });
  }
  for (const p of old.privileges) {
    const has = now.privileges.some((q) => q.grantee === p.grantee && q.privilege === p.privilege);
    if (!has) missing.push({ object: `${p.privilege} (${old.column}) to ${p.grantee}`, why: `${plan.newColumn} lacks it` });
  }
  for (const x of old.other)
    missing.push({ object: `${x.kind} constraint ${x.name}`, why: `stagefill does not carry ${x.kind} constraints: ${x.definition}` });
  for (const v of old.views) missing.push({ object: `view ${v}`, why: `it reads ${col}; dropping the column would need CASCADE` });

  return { table: old.table, column: old.column, changes, missing, isSafe: missing.length === 0 };
}

/** One readable block for `plan`, the audit and the held rollout's message. */
export function formatContractCheck(c: ContractCheck): string {
  const lines = [`contract of ${c.table}.${c.column}:`];
  for (const x of c.changes) lines.push(`  ${x.action.padEnd(8)} ${x.object}: ${x.detail}`);
  for (const m of c.missing) lines.push(`  MISSING  ${m.object}: ${m.why}`);
  return lines.join('\n');
}
