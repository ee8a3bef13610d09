/**
 * Reading a value the code has already shown is there: an index inside a loop's bounds, the first
 * of a list checked non-empty, a regular expression's group that matched. Typed without `undefined`,
 * and where the proof was wrong a RangeError that names what was missing, where a bare `xs[i]!`
 * would carry `undefined` on silently until something far away fails on it.
 */

/** `items[index]` of a list of defined values, for an index the caller knows is inside it (throws RangeError otherwise). */
export function itemAt<T>(items: ArrayLike<T>, index: number, what = 'item'): T {
  const item = items[index];
  if (item === undefined) throw new RangeError(`${what} ${index} is missing: the list holds ${items.length}`);
  return item;
}

/** The value, which the caller knows is there (a matched group, an entry just set, a column NULL only for other rows): throws RangeError naming `what` if it is undefined or null. */
export function present<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new RangeError(`${what} is missing`);
  return value;
}

/** The item of a list of exactly one, else undefined: where a one-column key and a composite one part ways. */
export function onlyItem<T>(items: readonly T[]): T | undefined {
  return items.length === 1 ? items[0] : undefined;
}
