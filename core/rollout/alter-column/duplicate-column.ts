/**
 * The altered column's own properties carried to its new column (part of
 * planDuplication, core/rollout/alter-column/duplicate.ts): NOT NULL, DEFAULT
 * (and a serial's sequence), identity, comment and privileges. Pure; each
 * part adds its actions, counterparts and problems to the draft in the order
 * the plan lists them.
 */
import { notNullHelperName } from '../object-names';
import type { Draft } from './duplicate';

/** The old column's NOT NULL, over the new column. */
export function carryNotNull(draft: Draft): void {
  const { o, t, col, newColumn, finalName, later, actions, counterparts } = draft;
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
}

/** The DEFAULT the new column gets at contract, and a serial's sequence, which follows the column. */
export function carryDefault(draft: Draft): void {
  const { o, t, col, newColumn, finalName, isTypeChange, opts, later, actions, counterparts } = draft;
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
}

/** Identity: a new one at contract continuing the old one's sequence, or a refusal for a type that cannot be one. */
export function carryIdentity(draft: Draft): void {
  const { o, t, col, newColumn, finalName, isTypeChange, opts, actions, problems, counterparts } = draft;
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
}

/** The column's comment, copied at expand. */
export function carryComment(draft: Draft): void {
  const { o, t, col, newColumn, later, actions, counterparts } = draft;
  // a comment a later step sets on the new column is the intended one: the old one is copied at expand all the same (the step replaces it)
  if (o.comment !== null) {
    actions.push({ phase: 'expand', object: `comment on ${col}`, op: 'comment', table: t, column: newColumn, text: o.comment });
    const final = later.comment ? (later.comment.value ?? 'none') : o.comment;
    counterparts.push({ object: `comment on ${col}`, kind: 'comment', original: o.comment, counterpart: final, final });
  }
}

/** Column privileges, granted on the new column at expand. */
export function carryPrivileges(draft: Draft): void {
  const { o, t, newColumn, actions, counterparts } = draft;
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
}

/** The sequence type (smallint, integer, bigint) a column type maps to, or null for a type a sequence cannot have. */
export function sequenceType(t: string): string | null {
  const n = normalizeType(t);
  if (['smallint', 'int2'].includes(n)) return 'smallint';
  if (['integer', 'int', 'int4'].includes(n)) return 'integer';
  if (['bigint', 'int8'].includes(n)) return 'bigint';
  return null;
}

export function normalizeType(t: string): string {
  return t.toLowerCase().replace(/\s+/g, ' ').trim();
}
