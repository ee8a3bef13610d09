import { qualifiedName } from '../common/table-name';

/**
 * The names stagefill derives for the objects a step creates when the spec
 * names none, like Postgres' own (`<table>_<columns>_key`, `_fkey`, `_idx`).
 * And the names of what stagefill adds while both versions live: an
 * alterColumn's new column, its counterparts and NOT NULL helper, the
 * version schemas. Pure: the step kinds, `plan` and the logical-name rules
 * build every derived name here, nowhere else.
 */

/** FNV-1a, 8 hex digits: a stable short tag for derived names (pure, no node:crypto in the workflow bundle). */
export function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * A derived object name `<table>_<parts>_<suffix>` like Postgres' own, cut to
 * 63 characters with a hash of the full name when it is longer, so two long
 * names do not collide on their common prefix.
 */
export function derivedName(table: string, parts: string[], suffix: string): string {
  const bare = table.includes('.') ? table.slice(table.indexOf('.') + 1) : table;
  const full = `${bare}_${parts.join('_')}_${suffix}`;
  if (full.length <= 63) return full;
  return `${full.slice(0, 63 - suffix.length - 10)}_${shortHash(full)}_${suffix}`;
}

/** A createIndex's name: its own, else from its columns and a hash of its expressions. */
export function indexNameOf(step: { name?: string; columns?: string[]; expressions?: string[] }, table: string): string {
  if (step.name) return step.name;
  const parts = [...(step.columns ?? []), ...(step.expressions?.length ? [`expr_${shortHash(step.expressions.join('\0'))}`] : [])];
  return derivedName(table, parts, 'idx');
}

/** An addUnique's constraint (and its index): its own name, else `<table>_<columns>_key`. */
export function uniqueNameOf(step: { name?: string; columns: string[] }, table: string): string {
  return step.name ?? derivedName(table, step.columns, 'key');
}

/** An addForeignKey's constraint: its own name, else `<table>_<columns>_fkey`. */
export function foreignKeyNameOf(step: { name?: string; columns: string[] }, table: string): string {
  return step.name ?? derivedName(table, step.columns, 'fkey');
}

/** The index an addForeignKey's `referencingIndex: create` builds. */
export function referencingIndexNameOf(step: { columns: string[] }, table: string): string {
  return derivedName(table, step.columns, 'idx');
}

/** The physical column an alterColumn adds: its newName, else `<column>_stagefill_new` (renamed to the column's name at contract). */
export function newColumnName(step: { column: string; newName?: string }): string {
  return step.newName ?? `${step.column}_stagefill_new`;
}

/** The name the column an alterColumn changes has in the new version and after contract: its newName, else its own. */
export function finalNameOf(step: { column: string; newName?: string }): string {
  return step.newName ?? step.column;
}

/** A counterpart's name while both columns live (an alterColumn's copy of `original`): unique, at most 63 bytes, recognisably stagefill's. */
export function counterpartName(table: string, original: string): string {
  return `${original.slice(0, 40)}_sfdup_${shortHash(`${table}\0${original}`)}`;
}

/** The NOT VALID helper check that carries NOT NULL to an alterColumn's new column until contract sets it. */
export function notNullHelperName(table: string, column: string): string {
  return `${column.slice(0, 40)}_sfnn_${shortHash(`${table}\0${column}\0nn`)}`;
}

/** The view schema of one version of a table: `<schema>_<table>_v<n>`. */
export function viewSchemaName(table: string, version: number): string {
  const [schema, name] = qualifiedName(table).split('.');
  return `${schema}_${name}_v${version}`.slice(0, 63);
}

/** True for a name `viewSchemaName(table, n)` gives, for any n. */
export function isViewSchemaOf(table: string, schema: string): boolean {
  const v0 = viewSchemaName(table, 0);
  // a name so long that the version was cut off: every version maps to this one schema
  if (!v0.endsWith('_v0')) return schema === v0;
  const prefix = v0.slice(0, -1);
  return schema.startsWith(prefix) && /^\d+$/.test(schema.slice(prefix.length));
}

/** A regular expression source matching the names `viewSchemaName(table, n)` gives, for any n: stagefill's own views are not the user's. */
export function versionSchemaPattern(table: string): string {
  const escape = (s: string) => s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
  const v0 = viewSchemaName(table, 0);
  // a name so long that the version was cut off: every version maps to this one schema
  if (!v0.endsWith('_v0')) return `^${escape(v0)}$`;
  return `^${escape(v0.slice(0, -1))}[0-9]+$`;
}
