import type { RolloutStep } from '../../steps/spec';
import { hashTransform } from '../../core/common/hash';

/** The fields a step's user SQL lives in: hashed into the rollout's lineage. */
const LINEAGE_FIELDS = ['up', 'down', 'transform', 'apply', 'revert', 'expression', 'default'] as const;

export function stepLineage(step: RolloutStep | { kind: string }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of LINEAGE_FIELDS) {
    const v = (step as Record<string, unknown>)[f];
    if (typeof v === 'string') out[f] = hashTransform(v);
  }
  return out;
}

/** One hash of a step's user SQL, recorded on its row and in its audit events; undefined for steps without any. */
export function stepHash(step: RolloutStep | { kind: string }): string | undefined {
  const l = stepLineage(step);
  return Object.keys(l).length ? hashTransform(JSON.stringify(l)) : undefined;
}
