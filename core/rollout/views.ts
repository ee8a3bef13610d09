/**
 * What a step does to the shape of the table as each version sees it, for
 * `expose`'s views: `added` columns are new (hidden from the legacy view),
 * `replaced` shows `by` as `as` in the new view instead of `column` (only once
 * `by` exists), `dropped` columns are hidden from the new view.
 */
export interface ShapeChange {
  added?: string[];
  replaced?: { column: string; by: string; as: string }[];
  dropped?: string[];
  /** The new version does not see the table at all (dropTable): its version schema holds no view of it. */
  isTableHidden?: boolean;
  /** The new version sees the table under this name (renameTable): the view in its version schema is named so. */
  tableRenamedTo?: string;
}

export interface ViewColumn {
  source: string;
  as: string;
}

/**
 * The columns of the new version's view and of the legacy (previous) one,
 * from the table's columns now and what each step of the table changes.
 * A replacement counts only once its new column exists.
 */
export function viewShapes(columns: string[], changes: ShapeChange[]): { newShape: ViewColumn[]; legacyShape: ViewColumn[] } {
  const present = new Set(columns);
  const replaced = changes.flatMap((c) => c.replaced ?? []).filter((r) => present.has(r.by));
  const dropped = new Set(changes.flatMap((c) => c.dropped ?? []));
  const added = new Set(changes.flatMap((c) => c.added ?? []));
  const introduced = new Set(replaced.map((r) => r.by));
  const newShape: ViewColumn[] = [];
  for (const c of columns) {
    if (introduced.has(c)) continue; // shown in the place of the column it replaces
    const r = replaced.find((x) => x.column === c);
    if (r) newShape.push({ source: r.by, as: r.as });
    else if (!dropped.has(c)) newShape.push({ source: c, as: c });
  }
  const legacyShape = columns.filter((c) => !added.has(c) && !introduced.has(c)).map((c) => ({ source: c, as: c }));
  return { newShape, legacyShape };
}

/**
 * The name of the table's view in the new version's schema: the table's own
 * name, another one when a step renames the table, or null when a step drops
 * it (the version schema then holds no view of it).
 */
export function versionViewName(tableName: string, changes: ShapeChange[]): string | null {
  if (changes.some((c) => c.isTableHidden)) return null;
  return changes.find((c) => c.tableRenamedTo !== undefined)?.tableRenamedTo ?? tableName;
}
