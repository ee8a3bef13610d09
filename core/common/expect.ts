/** A check's expectation, as written in specs: `{eq: 0}`, `{lte: 0.01}`, `{between: [a, b]}`. */
export type Expectation =
  { eq: number } | { lte: number } | { gte: number } | { lt: number } | { gt: number } | { between: [number, number] };

export interface ExpectResult {
  ok: boolean;
  /** How far outside the expectation the value is (0 when ok). */
  deviation: number;
}

/** Tolerance widens every bound by that absolute amount (eq 100 with tolerance 2 accepts 98..102). */
export function evaluateExpect(value: number, expect: Expectation, tolerance = 0): ExpectResult {
  if (!Number.isFinite(value)) return { ok: false, deviation: Number.POSITIVE_INFINITY };
  let lo = Number.NEGATIVE_INFINITY;
  let hi = Number.POSITIVE_INFINITY;
  let strictLo = false;
  let strictHi = false;
  if ('eq' in expect) lo = hi = expect.eq;
  else if ('lte' in expect) hi = expect.lte;
  else if ('lt' in expect) {
    hi = expect.lt;
    strictHi = true;
  } else if ('gte' in expect) lo = expect.gte;
  else if ('gt' in expect) {
    lo = expect.gt;
    strictLo = true;
  } else [lo, hi] = expect.between;
  lo -= tolerance;
  hi += tolerance;
  const belowBy = strictLo ? (value <= lo ? lo - value || Number.EPSILON : 0) : Math.max(0, lo - value);
  const aboveBy = strictHi ? (value >= hi ? value - hi || Number.EPSILON : 0) : Math.max(0, value - hi);
  const deviation = Math.max(belowBy, aboveBy);
  return { ok: deviation === 0, deviation };
}

export function describeExpect(expect: Expectation, tolerance = 0): string {
  const tol = tolerance ? ` (± ${tolerance})` : '';
  if ('eq' in expect) return `= ${expect.eq}${tol}`;
  if ('lte' in expect) return `<= ${expect.lte}${tol}`;
  if ('lt' in expect) return `< ${expect.lt}${tol}`;
  if ('gte' in expect) return `>= ${expect.gte}${tol}`;
  if ('gt' in expect) return `> ${expect.gt}${tol}`;
  return `between ${expect.between[0]} and ${expect.between[1]}${tol}`;
}
