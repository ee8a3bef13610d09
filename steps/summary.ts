import type { RolloutSpec } from './spec';
import { qualifiedName } from '../core/common/table-name';
import { planRollout } from './describe';
import type { BackfillSpec } from '../core/common/fields';

/** What a backfill's run knows once prepared; the client, before the run, knows only the transform's hash. */
export interface BackfillFacts {
  table?: string;
  transformHash?: string;
  generation?: number;
  range?: unknown;
  rowsTotal?: number;
  continued?: boolean;
}

/** The one summary of a backfill in its workflow memo (what the Temporal UI shows beside the run), however it was started. */
export function backfillSummary(spec: BackfillSpec, facts: BackfillFacts = {}): Record<string, unknown> {
  return {
    kind: 'backfill',
    name: spec.name,
    table: facts.table ?? qualifiedName(spec.table),
    key: spec.key,
    chunkSize: spec.chunkSize,
    parallelism: spec.parallelism,
    transformHash: facts.transformHash,
    generation: facts.generation,
    range: facts.range,
    rowsTotal: facts.rowsTotal,
    window: spec.window ? `${spec.window.start} for ${spec.window.duration}ms ${spec.window.timeZone ?? 'UTC'}` : undefined,
    continued: facts.continued,
  };
}

/** The one summary of a rollout in its workflow memo. */
export function rolloutSummary(spec: RolloutSpec): Record<string, unknown> {
  const plan = planRollout(spec);
  return {
    kind: 'rollout',
    name: spec.name,
    tables: plan.tables,
    steps: plan.steps.map((s) => `${s.id}: ${s.kind} on ${s.table}`),
    rollbackWindow: spec.rollbackWindow,
  };
}

/** Every table a rollout touches, canonical, first the spec's own. */
export function rolloutTables(spec: RolloutSpec): string[] {
  return [...new Set([spec.table, ...spec.steps.map((s) => s.table ?? spec.table)].map((t) => qualifiedName(t)))];
}

/** backfillSummary as the backfill workflow calls it, with the facts of its prepared run. */
export function backfillMemoSummary(spec: BackfillSpec, table: string, facts: BackfillFacts): Record<string, unknown> {
  return backfillSummary(spec, { ...facts, table });
}
