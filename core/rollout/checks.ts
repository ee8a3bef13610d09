import type { GateCheck } from '../common/fields';
import { evaluateExpect, describeExpect } from '../common/expect';

export interface CheckResult {
  name: string;
  ok: boolean;
  value: string | null;
  expected: string;
  deviation: number | null;
  error?: string;
}

/**
 * Whether one gate check passed: its value against its bound, or against the
 * baseline taken at the rollout start (numbers within tolerance, anything
 * else equal as text). Pure.
 */
export function evaluateCheck(
  stepId: string,
  baselines: Record<string, string | null>,
  check: GateCheck,
  value: string | null,
  error?: string,
): CheckResult {
  const tol = check.tolerance ? ` (± ${check.tolerance})` : '';
  const key = `${stepId}/${check.name}`;
  const expected = check.expect ? describeExpect(check.expect, check.tolerance) : `unchanged from ${baselines[key] ?? 'NULL'}${tol}`;
  if (error !== undefined) return { name: check.name, ok: false, value: null, expected, deviation: null, error };
  if (check.expect) {
    const r = evaluateExpect(value === null ? Number.NaN : Number(value), check.expect, check.tolerance);
    return { name: check.name, ok: r.ok, value, expected, deviation: Number.isFinite(r.deviation) ? r.deviation : null };
  }
  const baseline = baselines[key];
  if (baseline === undefined) {
    return {
      name: check.name,
      ok: false,
      value,
      expected,
      deviation: null,
      error: `no baseline was taken for "${key}" at the rollout start`,
    };
  }
  const isNumber = (s: string | null): s is string => s !== null && s.trim() !== '' && Number.isFinite(Number(s));
  if (isNumber(value) && isNumber(baseline)) {
    const deviation = Math.max(0, Math.abs(Number(value) - Number(baseline)) - check.tolerance);
    return { name: check.name, ok: deviation === 0, value, expected, deviation };
  }
  const ok = value === baseline;
  return { name: check.name, ok, value, expected, deviation: ok ? 0 : null };
}
