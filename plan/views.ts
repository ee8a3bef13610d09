import { qualifiedName } from './ids';
import type { ShapeChange } from '../steps/types';

/** The view schema of one version of a table: `<schema>_<table>_v<n>`. */
export function viewSchemaName(table: string, version: number): string {
  const [schema, name] = qualifiedName(table).split('.');
  return `${schema}_${name}_v${version}`.slice(0, 63);
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
