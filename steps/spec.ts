import { z } from 'zod';
import { normalizeGraph, graphProblems } from './graph';
import { resolveLogicalNames } from '../core/rollout/columns';
import { alterColumnConflicts, dropOfAlteredColumn } from '../core/rollout/refusals';
import type { BackfillSpec } from '../core/common/fields';
import { backfillFields, backfillSpec, tableName, duration, lockTimeoutMs, notify } from '../core/common/fields';
import { STEP_SCHEMAS, STEP_KINDS, stepModule } from '.';
import { qualifiedName } from '../core/common/table-name';
import { itemAt } from '../core/common/checked';

/**
 * The specs a platform team writes: a backfill, or a rollout of steps. These
 * schemas are the single source of truth; the types are inferred from them.
 * Pure: used by the CLI, the client library and (as types) the workflows.
 */

export type BackfillSpecInput = z.input<typeof backfillSpec>;

export const rolloutStep = z.discriminatedUnion('kind', STEP_SCHEMAS, {
  errorMap: (issue, ctx) =>
    issue.code === 'invalid_union_discriminator'
      ? { message: `kind must be one of ${STEP_KINDS.join(', ')}` }
      : { message: ctx.defaultError },
});

export const rolloutSpec = z
  .object({
    kind: z.literal('rollout'),
    name: backfillFields.name,
    table: tableName,
    /** How long after the new version is exposed a contract step must wait. */
    rollbackWindow: duration.default('0s'),
    maxConcurrentSteps: z.number().int().min(1).max(16).default(4),
    /** How long each step's DDL waits for its table lock before it gives up and is retried; 3s when absent. A step's own lockTimeoutMs wins. */
    lockTimeoutMs,
    steps: z.array(rolloutStep).min(1, 'a rollout needs at least one step'),
    /** A webhook for this rollout's notifications (docs/operations.md "Notifications"). */
    notify: notify.optional(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    spec.steps.forEach((s, i) => {
      for (const p of stepModule(s.kind).check?.(s) ?? [])
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['steps', i, ...p.path], message: p.message });
    });
    const graph = normalizeGraph(spec.steps, spec.table);
    for (const p of graphProblems(graph))
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['steps', p.index, p.field], message: p.message });
    const placed = spec.steps.map((step, i) => {
      const g = itemAt(graph, i, 'step');
      return { id: g.id, table: qualifiedName(g.table), step };
    });
    for (const p of [...alterColumnConflicts(placed), ...dropOfAlteredColumn(placed)])
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['steps', p.index, p.field], message: p.message });
  });

export type RolloutSpec = z.infer<typeof rolloutSpec>;
export type RolloutSpecInput = z.input<typeof rolloutSpec>;
export type RolloutStep = z.infer<typeof rolloutStep>;

export const spec = z.discriminatedUnion('kind', [backfillSpec, rolloutSpec.innerType()], {
  errorMap: (issue, ctx) =>
    issue.code === 'invalid_union_discriminator' ? { message: 'kind must be "backfill" or "rollout"' } : { message: ctx.defaultError },
});
export type Spec = BackfillSpec | RolloutSpec;

/** A spec error: every problem with its path ("steps.2.up") and what to do. */
export class SpecError extends Error {
  constructor(
    readonly issues: { path: string; message: string }[],
    readonly source?: string,
  ) {
    super(issues.map((i) => `${i.path || '(spec)'}: ${i.message}`).join('; '));
  }
}

function toSpecError(err: z.ZodError, source?: string): SpecError {
  const issues = err.issues.flatMap((i) => {
    if (i.code === 'invalid_union' && i.unionErrors.length) {
      // report the branch that got furthest rather than every alternative
      const depth = (e: z.ZodError) => e.issues[0]?.path.length ?? 0;
      const best = i.unionErrors.reduce((a, b) => (depth(b) > depth(a) ? b : a));
      return best.issues;
    }
    return [i];
  });
  return new SpecError(
    issues.map((i) => ({
      path: i.path.join('.'),
      message:
        i.code === 'unrecognized_keys'
          ? `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}; remove ${i.keys.length > 1 ? 'them' : 'it'} or check the spelling`
          : i.code === 'invalid_type' && i.received === 'undefined'
            ? `${i.path[i.path.length - 1] ?? 'value'} is required`
            : i.message,
    })),
    source,
  );
}

export function parseSpec(input: unknown, source?: string): Spec {
  const kind = (input as { kind?: unknown })?.kind;
  const r = kind === 'rollout' ? rolloutSpec.safeParse(input) : spec.safeParse(input);
  if (!r.success) throw toSpecError(r.error, source);
  return r.data.kind === 'rollout' ? withPhysicalNames(r.data, source) : r.data;
}

/**
 * Later steps name columns as users see them: after an alterColumn of `qty`, a
 * setNotNull of `qty`, an addCheck over `qty` and old(qty)/new(qty) in checks
 * are resolved to the physical columns (core/rollout/columns.ts). Idempotent.
 */
function withPhysicalNames(parsed: RolloutSpec, source?: string): RolloutSpec {
  try {
    return resolveLogicalNames(parsed, qualifiedName);
  } catch (err) {
    throw new SpecError([{ path: 'steps', message: (err as Error).message }], source);
  }
}

export function parseBackfillSpec(input: unknown, source?: string): BackfillSpec {
  const r = backfillSpec.safeParse(input);
  if (!r.success) throw toSpecError(r.error, source);
  return r.data;
}

export function parseRolloutSpec(input: unknown, source?: string): RolloutSpec {
  const r = rolloutSpec.safeParse(input);
  if (!r.success) throw toSpecError(r.error, source);
  return withPhysicalNames(r.data, source);
}
