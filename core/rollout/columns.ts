import { rewriteColumnRefs, tokenize, identifierName, quoteIdent, referencedNames } from './sql-rewrite';
import { uniqueNameOf, foreignKeyNameOf, indexNameOf, newColumnName, finalNameOf } from './object-names';
import { qualifiedName } from '../common/table-name';
import type { LaterChanges } from './alter-column/duplication-types';
import { itemAt } from '../common/checked';

/**
 * Logical column names: users write the names a reader of the table sees;
 * stagefill resolves them to the physical columns. Pure.
 *
 * - After `alterColumn` of `qty` with a new type (no newName), later steps of
 *   the same rollout on that table that name `qty` mean the new column
 *   (`qty_stagefill_new`) until contract renames it to `qty`.
 * - After `alterColumn` of `code` with `newName: sku`, `sku` means the new
 *   column (which is physically `sku` already); `code` still names the legacy
 *   column.
 * - `up` is over the old version's row: its names are the physical ones.
 * - `down` is over the new version's row: `qty` there is the new qty (the
 *   trigger evaluates `down` over a row shaped like the new version,
 *   `newVersionRow`).
 * - Gate and soak checks read both sides with `old(c)` and `new(c)`
 *   (`checkSql`): `old(qty)` is the legacy column, `new(qty)` the new one,
 *   also qualified (`new(o.qty)` for an alias `o`). A bare `qty` in a check
 *   is the physical column of that name, as any query sees it.
 */

/**
 * A step as the name rules see it: its kind, and the fields of the kinds
 * they resolve, unchecked (narrow one before use). core/ imports no step
 * schema; every rollout step (steps/spec.ts RolloutStep) is one. `version`
 * (an expose's) is here for the callers that read it off a placed step.
 */
export interface StepShape {
  kind: string;
  column?: unknown;
  newName?: unknown;
  columns?: unknown;
  include?: unknown;
  expressions?: unknown;
  expression?: unknown;
  where?: unknown;
  on?: unknown;
  name?: unknown;
  default?: unknown;
  comment?: unknown;
  checks?: unknown;
  version?: unknown;
}

export interface PlacedStep {
  id: string;
  /** Canonical schema.table. */
  table: string;
  step: StepShape;
}

/** The fields of an alterColumn the name rules use. */
type AlterStep = StepShape & { kind: 'alterColumn'; column: string; newName?: string };

const isAlter = (step: StepShape): step is AlterStep => step.kind === 'alterColumn';

export interface ColumnMap {
  /** Logical name -> physical column, for names that differ from their physical column. */
  toPhysical: Map<string, string>;
  /** The alterColumn steps in force (applied before this point, not yet contracted). */
  alters: AlterStep[];
}

/**
 * The names in force for `table` when step `index` runs: every alterColumn
 * before it in the spec on that table, reset by a contract on that table
 * (contract renames the new columns to their logical names).
 */
export function columnMapAt(steps: PlacedStep[], index: number, table: string): ColumnMap {
  const toPhysical = new Map<string, string>();
  let alters: AlterStep[] = [];
  for (const s of steps.slice(0, index)) {
    if (s.table !== table) continue;
    if (s.step.kind === 'contract') {
      toPhysical.clear();
      alters = [];
    } else if (isAlter(s.step)) {
      const logical = finalNameOf(s.step);
      const physical = newColumnName(s.step);
      if (logical !== physical) toPhysical.set(logical, physical);
      alters.push(s.step);
    }
  }
  return { toPhysical, alters };
}

/**
 * What steps after an alterColumn (spec order, same table, up to the next
 * contract there) set on its new column on purpose: a default (null: dropped),
 * a comment, NOT NULL on or off. That is the state the rollout asks for, so
 * contract keeps it instead of carrying the old column's over (the last such
 * step of each kind wins). Over a resolved spec (step columns physical).
 */
export function laterChangesOf(steps: PlacedStep[], index: number, table: string, newColumn: string): LaterChanges {
  const out: LaterChanges = {};
  for (const s of steps.slice(index + 1)) {
    if (s.table !== table) continue;
    if (s.step.kind === 'contract') break;
    const any = s.step as unknown as Record<string, unknown>;
    const onNew = (any.column ?? (any.on === 'column' ? any.name : undefined)) === newColumn;
    if (!onNew) continue;
    if (s.step.kind === 'setDefault') out.default = { step: s.id, value: String(any.default) };
    else if (s.step.kind === 'dropDefault') out.default = { step: s.id, value: null };
    else if (s.step.kind === 'setComment') out.comment = { step: s.id, value: (any.comment as string | null) ?? null };
    else if (s.step.kind === 'setNotNull') out.notNull = { step: s.id, value: true };
    else if (s.step.kind === 'dropNotNull') out.notNull = { step: s.id, value: false };
  }
  return out;
}

/** The alterColumn in force at step `index` on `table` whose new column is `column`, if any: a later step acting on its new column. */
export function alterOwning(steps: PlacedStep[], index: number, table: string, column: string): AlterStep | undefined {
  return columnMapAt(steps, index, table).alters.find((a) => newColumnName(a) === column);
}

/** The physical column a step's `column` means. */
export function resolveColumn(map: ColumnMap, name: string): string {
  return map.toPhysical.get(name) ?? name;
}

/** An expression over the new version's names (an addCheck, a setNotNull's column), over the physical columns. */
export function resolveExpression(map: ColumnMap, expr: string): string {
  if (!map.toPhysical.size) return expr;
  // identifiers in expressions: a bare name folds to lower case, so `qty` and `QTY` both mean qty, `"Qty"` only Qty
  return rewriteColumnRefs(expr, Object.fromEntries(map.toPhysical));
}

/**
 * The new version's row: each physical column under the name the new
 * version gives it. Columns an alterColumn replaces are hidden; the new
 * columns read under their logical names; everything else as it is.
 */
export function newVersionRow(physicalColumns: string[], alters: { column: string; newName?: string }[]): { source: string; as: string }[] {
  const introduced = new Set(alters.map(newColumnName));
  const out: { source: string; as: string }[] = [];
  for (const c of physicalColumns) {
    if (introduced.has(c)) continue; // shown in the place of the column it replaces
    const alter = alters.find((a) => a.column === c);
    if (alter) out.push({ source: newColumnName(alter), as: finalNameOf(alter) });
    else out.push({ source: c, as: c });
  }
  return out;
}

export class PlaceholderError extends Error {}

/**
 * A check query with `old(c)` / `new(c)` placeholders rewritten to the
 * physical columns: `old(qty)` the legacy column, `new(qty)` the new one
 * (the same column when nothing replaced `qty`). An alias or table before
 * the name is kept: `new(o.qty)` -> `o.qty_stagefill_new`. A name that is
 * neither a logical nor a physical column of an alterColumn in force is left
 * to the database, which names it in its error.
 */
export function checkSql(sqlText: string, map: ColumnMap): string {
  const tokens = tokenize(sqlText);
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = itemAt(tokens, i, 'token');
    const word = t.kind === 'word' ? t.text.toLowerCase() : undefined;
    if ((word === 'old' || word === 'new') && tokens[i + 1]?.text === '(') {
      // old( [qualifier .] name )
      const inner: typeof tokens = [];
      let j = i + 2;
      for (; j < tokens.length; j++) {
        const inside = itemAt(tokens, j, 'token');
        if (inside.text === ')') break;
        if (inside.kind !== 'space') inner.push(inside);
      }
      const isSimple = inner.length === 1 || (inner.length === 3 && inner[1]?.text === '.');
      const qualifier = inner.length === 3 ? inner[0] : undefined;
      const nameTok = inner[inner.length - 1];
      const name = nameTok ? identifierName(nameTok) : undefined;
      if (
        j < tokens.length &&
        isSimple &&
        name !== undefined &&
        (inner.length === 1 || (qualifier && identifierName(qualifier) !== undefined))
      ) {
        const physical = word === 'new' ? newSide(map, name) : oldSide(map, name);
        out.push(`${qualifier ? `${qualifier.text}.` : ''}${quoteIdent(physical)}`);
        i = j;
        continue;
      }
      if (j >= tokens.length || !isSimple)
        throw new PlaceholderError(
          `${word}(...) takes one column name, e.g. ${word}(qty) or ${word}(o.qty); got ${word}(${inner.map((x) => x.text).join('')})`,
        );
    }
    out.push(t.text);
  }
  return out.join('');
}

function newSide(map: ColumnMap, name: string): string {
  const byLogical = map.alters.find((a) => finalNameOf(a) === name);
  if (byLogical) return newColumnName(byLogical);
  const byOld = map.alters.find((a) => a.column === name);
  return byOld ? newColumnName(byOld) : name;
}

function oldSide(map: ColumnMap, name: string): string {
  const byLogical = map.alters.find((a) => finalNameOf(a) === name || newColumnName(a) === name);
  return byLogical ? byLogical.column : name;
}

/**
 * The columns a step of a column-taking kind names, as it wrote them: every
 * kind that takes a column resolves it the same way after an alterColumn
 * (`resolveStepColumns`), and `plan` prints the physical column of each.
 */
export function columnsNamedBy(step: { kind: string } & Record<string, unknown>): string[] {
  const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  switch (step.kind) {
    case 'alterColumn':
    case 'setNotNull':
    case 'dropNotNull':
    case 'setDefault':
    case 'dropDefault':
      return typeof step.column === 'string' ? [step.column] : [];
    case 'setComment':
      return step.on === 'column' && typeof step.name === 'string' ? [step.name] : [];
    case 'addUnique':
    case 'addForeignKey':
      return list(step.columns);
    case 'createIndex':
      return [
        ...list(step.columns),
        ...list(step.include),
        ...[...list(step.expressions), ...(typeof step.where === 'string' ? [step.where] : [])].flatMap((e) => [...referencedNames(e)]),
      ];
    case 'addCheck':
      return typeof step.expression === 'string' ? [...referencedNames(step.expression)] : [];
    default:
      return [];
  }
}

/** A column a step touches as `plan` shows it: its logical name, the physical column, the alterColumn whose new column it is. */
export interface PhysicalColumn {
  id: string;
  column: string;
  physical: string;
  alteredBy?: string;
  /** Set when the column is another table's (an addForeignKey's referenced column). */
  table?: string;
}

/** For `plan`: the physical column each step that names a column touches; `alteredBy` when it is the new column of an alterColumn in force. */
export function physicalColumnsOf(steps: PlacedStep[]): PhysicalColumn[] {
  const out: PhysicalColumn[] = [];
  const shown = (i: number, table: string, c: string): Omit<PhysicalColumn, 'id'> => {
    const map = columnMapAt(steps, i, table);
    const physical = resolveColumn(map, c);
    const alter = map.alters.find((x) => newColumnName(x) === physical);
    const by = alter && steps.find((x) => x.step === alter)?.id;
    return { column: alter ? finalNameOf(alter) : physical, physical, ...(by ? { alteredBy: by } : {}) };
  };
  steps.forEach((s, i) => {
    const step = s.step as unknown as { kind: string } & Record<string, unknown>;
    // an alterColumn names the legacy column; a resolved spec names the physical column already: show its logical name
    for (const c of new Set(columnsNamedBy(step))) {
      if (step.kind === 'alterColumn') {
        out.push({ id: s.id, column: c, physical: c });
        continue;
      }
      out.push({ id: s.id, ...shown(i, s.table, c) });
    }
    // an addForeignKey's referenced columns, over the names in force on the referenced table
    if (step.kind === 'addForeignKey') {
      const refs = referencesOf(step);
      const table = qualifiedName(refs.table);
      for (const c of new Set(refs.columns)) out.push({ id: s.id, ...shown(i, table, c), table });
    }
  });
  return out;
}

/**
 * One step with the names it uses resolved to the physical columns. Object
 * names derived from the columns (addUnique's, addForeignKey's, createIndex's
 * default names) are derived from the names as written, so what the step
 * creates keeps the name users expect once contract renamed the column.
 */
function resolveStep<T extends { kind: string }>(s: T, map: ColumnMap, table: string): T {
  const any = s as unknown as Record<string, unknown>;
  const col = (c: string) => resolveColumn(map, c);
  const cols = (v: unknown) => (v as string[]).map(col);
  const changed = (next: Record<string, unknown>): T => {
    const same = Object.keys(next).every((k) => JSON.stringify(next[k]) === JSON.stringify(any[k]));
    return same ? s : { ...s, ...next };
  };
  switch (s.kind) {
    case 'setNotNull':
    case 'dropNotNull':
    case 'setDefault':
    case 'dropDefault':
      return typeof any.column === 'string' ? changed({ column: col(any.column) }) : s;
    case 'setComment':
      return any.on === 'column' && typeof any.name === 'string' ? changed({ name: col(any.name) }) : s;
    case 'addCheck':
      return typeof any.expression === 'string' ? changed({ expression: resolveExpression(map, any.expression) }) : s;
    case 'addUnique': {
      if (!Array.isArray(any.columns)) return s;
      const next = changed({ columns: cols(any.columns) });
      return next === s ? s : { ...next, name: uniqueNameOf(s as never, table) };
    }
    case 'addForeignKey': {
      if (!Array.isArray(any.columns)) return s;
      const next = changed({ columns: cols(any.columns) });
      return next === s ? s : { ...next, name: foreignKeyNameOf(s as never, table) };
    }
    case 'createIndex': {
      const next = changed({
        ...(Array.isArray(any.columns) ? { columns: cols(any.columns) } : {}),
        ...(Array.isArray(any.include) ? { include: cols(any.include) } : {}),
        ...(Array.isArray(any.expressions) ? { expressions: (any.expressions as string[]).map((e) => resolveExpression(map, e)) } : {}),
        ...(typeof any.where === 'string' ? { where: resolveExpression(map, any.where) } : {}),
      });
      return next === s ? s : { ...next, name: indexNameOf(s as never, table) };
    }
    default:
      return s;
  }
}

/** An addForeignKey's `references` (table as written, columns). */
function referencesOf(s: object): { table: string; columns: string[] } {
  const r = (s as { references?: { table?: unknown; columns?: unknown } }).references;
  return {
    table: typeof r?.table === 'string' ? r.table : '',
    columns: Array.isArray(r?.columns) ? r.columns.filter((c): c is string => typeof c === 'string') : [],
  };
}

/**
 * An addForeignKey's referenced columns resolved like every other column a
 * step names, over the names in force on the referenced table (`refMap`): a
 * key to a column an alterColumn changed references its new column, which
 * contract renames (the key follows it).
 */
function resolveReferences<T extends { kind: string }>(s: T, refMap: ColumnMap): T {
  const refs = (s as unknown as { references: { table: string; columns: string[] } }).references;
  if (!refMap.toPhysical.size || !Array.isArray(refs?.columns)) return s;
  const columns = refs.columns.map((c) => resolveColumn(refMap, c));
  return columns.every((c, k) => c === refs.columns[k]) ? s : { ...s, references: { ...refs, columns } };
}

interface SpecLike {
  table: string;
  steps: { kind: string; id?: string; table?: string; dependsOn?: string[] }[];
}

/**
 * The spec with every logical column name a later step uses resolved to its
 * physical column: the column(s) of every column-taking kind (setNotNull,
 * dropNotNull, setDefault, dropDefault, setComment on a column, addUnique,
 * addForeignKey's own columns and its referenced columns (over the names in
 * force on the referenced table), createIndex's columns, include, expressions
 * and where), an addCheck's expression, gate and soak checks' old(c)/new(c). Idempotent (a resolved spec resolves to
 * itself). `qualify` turns a step's table into the canonical schema.table.
 */
export function resolveLogicalNames<S extends SpecLike>(spec: S, qualify: (table: string) => string): S {
  const placed: PlacedStep[] = spec.steps.map((s, i) => ({
    id: s.id ?? String(i),
    table: qualify(s.table ?? spec.table),
    step: s,
  }));
  const steps = spec.steps.map((s, i) => {
    const table = qualify(s.table ?? spec.table);
    const map = columnMapAt(placed, i, table);
    const any = s as Record<string, unknown>;
    if ((s.kind === 'gate' || s.kind === 'soak') && Array.isArray(any.checks)) {
      const checks = (any.checks as { sql: string }[]).map((c) => {
        const sql = checkSql(c.sql, map);
        return sql === c.sql ? c : { ...c, sql };
      });
      return checks.every((c, n) => c === (any.checks as unknown[])[n]) ? s : { ...s, checks };
    }
    const resolved = map.toPhysical.size ? resolveStep(s, map, table) : s;
    return s.kind === 'addForeignKey' ? resolveReferences(resolved, columnMapAt(placed, i, qualify(referencesOf(s).table))) : resolved;
  });
  return steps.every((s, i) => s === spec.steps[i]) ? spec : { ...spec, steps };
}
