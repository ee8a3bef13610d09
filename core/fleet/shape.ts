/**
 * Whether every target's table has the same shape before a fleet starts: the
 * shape most targets share is the expected one, and a target that differs is
 * named with the difference. Pure.
 */

/** A table's columns as `name type [not null]`, in column order; null: the table does not exist. */
export type TableShape = string[] | null;

export interface ShapeDifference {
  target: string;
  table: string;
  differences: string[];
}

/** Targets whose `table` differs from the shape most targets share (ties: the first target's in name order). */
export function shapeDifferences(table: string, shapes: { target: string; shape: TableShape }[]): ShapeDifference[] {
  const counts = new Map<string, number>();
  const sorted = [...shapes].sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  for (const s of sorted) counts.set(JSON.stringify(s.shape), (counts.get(JSON.stringify(s.shape)) ?? 0) + 1);
  let expectedKey = '';
  let best = -1;
  for (const [k, n] of counts) if (n > best) [expectedKey, best] = [k, n];
  const expected = JSON.parse(expectedKey || 'null') as TableShape;
  const out: ShapeDifference[] = [];
  for (const s of sorted) {
    if (JSON.stringify(s.shape) === expectedKey) continue;
    out.push({ target: s.target, table, differences: describeDifference(table, expected, s.shape) });
  }
  return out;
}

function describeDifference(table: string, expected: TableShape, actual: TableShape): string[] {
  if (actual === null) return [`${table} does not exist (the other targets have it)`];
  if (expected === null) return [`${table} exists here but not on the other targets`];
  const name = (c: string) => c.split(' ')[0];
  const exp = new Map(expected.map((c) => [name(c), c]));
  const act = new Map(actual.map((c) => [name(c), c]));
  const diff: string[] = [];
  for (const [n, c] of exp) {
    const a = act.get(n);
    if (a === undefined) diff.push(`column ${n} is missing (expected ${c})`);
    else if (a !== c) diff.push(`column ${a} (expected ${c})`);
  }
  for (const [n, c] of act) if (!exp.has(n)) diff.push(`extra column ${c}`);
  return diff;
}
