/**
 * Reading a value the code has already shown is there: an index inside a loop's bounds, the first
 * of a list checked non-empty, a regular expression's group that matched. Typed without `undefined`,
 * and where the proof was wrong a RangeError that names what was missing, where a bare `xs[i]!`
 * would carry `undefined` on silently until something far away fails on it.
 */

/** `items[index]`, for an index the caller knows is inside the list (throws RangeError otherwise). */
export function itemAt<T>(items: ArrayLike<T>, index: number, what = 'item'): T {
  if (!Number.isInteger(index) || index < 0 || index >= items.length)
    throw new RangeError(`${what} ${index} is missing: the list holds ${items.length}`);
  return items[index] as T;
}

/** The value, which the caller knows is defined (a matched group, an entry just set): throws RangeError naming `what` if not. */
export function present<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new RangeError(`${what} is missing`);
  return value;
}
