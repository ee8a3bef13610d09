import type { ColumnObjects } from './duplication-types';
import { rewriteColumnRefs } from '../sql-rewrite';
import { finalNameOf } from '../object-names';
import { itemAt } from '../../common/checked';

/**
 * A key's type changes only with every column that references it. When an
 * alterColumn changes the type of a column other tables' foreign keys
 * reference (orders.id int -> bigint, order_items.order_id referencing it),
 * each referencing column must be changed the same way by an alterColumn of
 * the same rollout: otherwise contract would recreate the key from a column
 * of the old type to the new key (an int child of a bigint parent cannot
 * hold ids past 2^31 - 1; an int child of a uuid parent no key at all).
 * `plan`, `start` and the alterColumn's expand run this rule on the foreign
 * keys the catalog lists; a contract holds on it. Pure.
 */

/** An alterColumn of the rollout, as the rule reads it. */
export interface KeyChange {
  id: string;
  /** Canonical schema.table. */
  table: string;
  column: string;
  newName?: string;
  newType?: string;
  up: string;
  down: string;
}

/** The rollout's alterColumns (its placed steps: id, canonical table, step) as the rule reads them. */
export function keyChangesOf(steps: { id: string; table: string; step: { kind: string } }[]): KeyChange[] {
  return steps
    .filter((s) => s.step.kind === 'alterColumn')
    .map((s) => {
      const a = s.step as unknown as Omit<KeyChange, 'id' | 'table'>;
      return { id: s.id, table: s.table, column: a.column, newName: a.newName, newType: a.newType, up: a.up, down: a.down };
    });
}

/** A referencing column the rollout leaves out (or changes to another type). */
export interface LeftOutReference {
  /** The foreign key, e.g. `FOREIGN KEY order_items_order_id_fkey of public.order_items`. */
  object: string;
  foreignKey: string;
  table: string;
  column: string;
  message: string;
}

type ForeignKey = ColumnObjects['referencedBy'][number];

/** Types compared by what they are, not how they are spelt (int8 is bigint). */
export function canonicalType(t: string): string {
  const n = t.toLowerCase().replace(/\s+/g, ' ').trim();
  const alias: Record<string, string> = {
    int: 'integer',
    int4: 'integer',
    int8: 'bigint',
    int2: 'smallint',
    bool: 'boolean',
    float8: 'double precision',
    float4: 'real',
    decimal: 'numeric',
    varchar: 'character varying',
    timestamptz: 'timestamp with time zone',
    timestamp: 'timestamp without time zone',
  };
  return alias[n] ?? n;
}

/**
 * The columns of `referencedBy` (the foreign keys that reference `parent`'s
 * column, read from the catalog) that the rollout's alterColumns (`changes`)
 * do not change to the parent's new type, and that are not of that type
 * already. Nothing when the parent's type does not change (a rename only:
 * the keys follow to the new name).
 */
export function leftOutReferences(
  parent: KeyChange,
  parentType: string,
  referencedBy: ForeignKey[],
  changes: KeyChange[],
): LeftOutReference[] {
  if (parent.newType === undefined || canonicalType(parent.newType) === canonicalType(parentType)) return [];
  const to = parent.newType;
  const out: LeftOutReference[] = [];
  const key = `${parent.table}.${parent.column}`;
  for (const f of referencedBy) {
    f.refColumns.forEach((refColumn, k) => {
      if (refColumn !== parent.column) return;
      const column = itemAt(f.columns, k, `column of FOREIGN KEY ${f.name}`);
      const object = `FOREIGN KEY ${f.name} of ${f.table}`;
      const child = changes.find((c) => c.table === f.table && c.column === column && c.id !== parent.id);
      const at = `${f.table}.${column}`;
      // a referencing column of the new type already (widened before, as some teams do first) needs no step
      const current = f.columnTypes?.[k];
      if (!child && current !== undefined && canonicalType(current) === canonicalType(to)) return;
      if (!child) {
        out.push({
          object,
          foreignKey: f.name,
          table: f.table,
          column,
          message: `${at} is left out: FOREIGN KEY ${f.name} of ${f.table} references ${key}, which step "${parent.id}" changes from ${parentType} to ${to}, and no alterColumn of the rollout changes ${at}, so contract would recreate the key from a column of the old type to a ${to} key. Fix: change ${at} the same way, in an alterColumn step of this rollout, and contract ${f.table} before ${parent.table}: ${exampleStep(parent, f.table, column)}, and a contract step for ${f.table} that the contract of ${parent.table} dependsOn (as in examples/orders-id-bigint.yaml)`,
        });
      } else if (child.newType === undefined || canonicalType(child.newType) !== canonicalType(to)) {
        out.push({
          object,
          foreignKey: f.name,
          table: f.table,
          column,
          message: `${at} is changed ${child.newType === undefined ? 'by name only' : `to ${child.newType}`} by step "${child.id}", but FOREIGN KEY ${f.name} of ${f.table} references ${key}, which step "${parent.id}" changes to ${to}: a key and the columns referencing it change to the same type. Fix: give step "${child.id}" newType: ${to}`,
        });
      }
    });
  }
  return out;
}

/** The step to add, in the spec's own words: the parent's up and down, over the referencing column. */
function exampleStep(parent: KeyChange, table: string, column: string): string {
  const up = rewriteColumnRefs(parent.up, { [parent.column]: column });
  // down reads the new version's row, where the parent's column has its new name
  const down = rewriteColumnRefs(parent.down, { [finalNameOf(parent)]: column });
  const id = `${table.split('.').pop()}-${column}`.replace(/_/g, '-');
  return `{ id: ${id}, kind: alterColumn, table: ${table}, column: ${column}, newType: ${parent.newType}, up: ${JSON.stringify(up)}, down: ${JSON.stringify(down)}, dependsOn: [${parent.id}] }`;
}

/** One readable refusal for the CLI and the step's failure. */
export function formatLeftOut(left: LeftOutReference[]): string {
  return left.map((l) => `${l.object}: ${l.message}`).join('\n');
}
