import type { RolloutStep } from '../spec';
import { rewriteColumnRefs, tokenize, identifierName, quoteIdent } from './sql-rewrite';

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

export interface PlacedStep {
  id: string;
  /** Canonical schema.table. */
  table: string;
  step: RolloutStep;
}

type AlterStep = Extract<RolloutStep, { kind: 'alterColumn' }>;

/** The physical column an alterColumn adds. */
export function newColumnName(step: { column: string; newName?: string }): string {
  return step.newName ?? `${step.column}_stagefill_new`;
}

/** The logical name the new version gives the column an alterColumn adds. */
export function logicalName(step: { column: string; newName?: string }): string {
  return step.newName ?? step.column;
}

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
    } else if (s.step.kind === 'alterColumn') {
      const logical = logicalName(s.step);
      const physical = newColumnName(s.step);
      if (logical !== physical) toPhysical.set(logical, physical);
      alters.push(s.step);
    }
  }
  return { toPhysical, alters };
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
    if (alter) out.push({ source: newColumnName(alter), as: logicalName(alter) });
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
    const t = tokens[i];
    const word = t.kind === 'word' ? t.text.toLowerCase() : undefined;
    if ((word === 'old' || word === 'new') && tokens[i + 1]?.text === '(') {
      // old( [qualifier .] name )
      const inner: typeof tokens = [];
      let j = i + 2;
      for (; j < tokens.length && tokens[j].text !== ')'; j++) if (tokens[j].kind !== 'space') inner.push(tokens[j]);
      const isSimple = inner.length === 1 || (inner.length === 3 && inner[1].text === '.');
      const nameTok = inner[inner.length - 1];
      const name = nameTok ? identifierName(nameTok) : undefined;
      if (j < tokens.length && isSimple && name !== undefined && (inner.length === 1 || identifierName(inner[0]) !== undefined)) {
        const physical = word === 'new' ? newSide(map, name) : oldSide(map, name);
        out.push(`${inner.length === 3 ? `${inner[0].text}.` : ''}${quoteIdent(physical)}`);
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
  const byLogical = map.alters.find((a) => logicalName(a) === name);
  if (byLogical) return newColumnName(byLogical);
  const byOld = map.alters.find((a) => a.column === name);
  return byOld ? newColumnName(byOld) : name;
}

function oldSide(map: ColumnMap, name: string): string {
  const byLogical = map.alters.find((a) => logicalName(a) === name || newColumnName(a) === name);
  return byLogical ? byLogical.column : name;
}

/** For `plan`: the physical column each step that names a column touches, when that differs from what it wrote. */
export function physicalColumnsOf(steps: PlacedStep[]): { id: string; column: string; physical: string }[] {
  const out: { id: string; column: string; physical: string }[] = [];
  steps.forEach((s, i) => {
    const map = columnMapAt(steps, i, s.table);
    if (s.step.kind === 'setNotNull' || s.step.kind === 'alterColumn') {
      out.push({ id: s.id, column: s.step.column, physical: resolveColumn(map, s.step.column) });
    }
  });
  return out;
}

interface SpecLike {
  table: string;
  steps: { kind: string; id?: string; table?: string; dependsOn?: string[] }[];
}

/**
 * The spec with every logical column name a later step uses resolved to its
 * physical column: a setNotNull's column, an addCheck's expression, gate and
 * soak checks' old(c)/new(c). Idempotent (a resolved spec resolves to
 * itself). `qualify` turns a step's table into the canonical schema.table.
 */
export function resolveLogicalNames<S extends SpecLike>(spec: S, qualify: (table: string) => string): S {
  const placed: PlacedStep[] = spec.steps.map((s, i) => ({
    id: s.id ?? String(i),
    table: qualify(s.table ?? spec.table),
    step: s as unknown as RolloutStep,
  }));
  const steps = spec.steps.map((s, i) => {
    const map = columnMapAt(placed, i, placed[i].table);
    const any = s as Record<string, unknown>;
    if (s.kind === 'setNotNull' && typeof any.column === 'string') {
      const column = resolveColumn(map, any.column);
      return column === any.column ? s : { ...s, column };
    }
    if (s.kind === 'addCheck' && typeof any.expression === 'string') {
      const expression = resolveExpression(map, any.expression);
      return expression === any.expression ? s : { ...s, expression };
    }
    if ((s.kind === 'gate' || s.kind === 'soak') && Array.isArray(any.checks)) {
      const checks = (any.checks as { sql: string }[]).map((c) => {
        const sql = checkSql(c.sql, map);
        return sql === c.sql ? c : { ...c, sql };
      });
      return checks.every((c, n) => c === (any.checks as unknown[])[n]) ? s : { ...s, checks };
    }
    return s;
  });
  return steps.every((s, i) => s === spec.steps[i]) ? spec : { ...spec, steps };
}
