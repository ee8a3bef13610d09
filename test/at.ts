/**
 * Reading into a list a test just made or asserted on, typed without `undefined` (the tests compile under
 * noUncheckedIndexedAccess): where the list is shorter than the test thought, the test fails here with the
 * list in the message, not later on `undefined`.
 */

/** `items[index]` (a negative index counts from the end, as Array.prototype.at does). */
export function at<T>(items: readonly T[], index: number): T {
  const item = items.at(index);
  if (item === undefined) throw new Error(`no item ${index} in a list of ${items.length}: ${JSON.stringify(items).slice(0, 500)}`);
  return item;
}

/** The one item of a list that should hold exactly one (a query for one row, the one event of a kind). */
export function only<T>(items: readonly T[]): T {
  if (items.length !== 1) throw new Error(`expected exactly one item, got ${items.length}: ${JSON.stringify(items).slice(0, 500)}`);
  return at(items, 0);
}
