import { z } from 'zod';
import { backfillFields, duration, gateCheck, notify } from '../core/common/fields';
import type { NotifySettings } from '../core/common/notify';
import type { Spec } from './spec';
import { parseSpec, SpecError } from './spec';
import { TARGET_NAME } from '../core/fleet/ids';
import type { WaveRule } from '../core/fleet/waves';
import { parseShare } from '../core/fleet/waves';

/**
 * `kind: fleet`: one rollout or backfill promoted across many databases in
 * ordered waves. Pure (the change given as a path is read by client/fleet/spec-load.ts).
 */

const targetName = z.string().regex(TARGET_NAME, 'a target name: letters, digits, _, . and - (as in the targets file)');

/**
 * A wave's soak: a rollout's soak checks (steps/soak), run on each of the
 * wave's targets. Bounds only: `unchanged` compares with a value a rollout
 * takes when it begins, and a wave has no such moment.
 */
const waveSoak = z
  .object({
    duration,
    every: duration.default('30s'),
    checks: z
      .array(gateCheck)
      .min(1, 'a soak needs at least one check')
      .superRefine((checks, ctx) =>
        checks.forEach((c, i) => {
          if (c.unchanged)
            ctx.addIssue({
              code: z.ZodIssueCode.custom,
              path: [i, 'unchanged'],
              message:
                "a wave's soak check needs expect: a bound (unchanged compares with the value a rollout took when it began); put it in the change's own soak step, or give expect",
            });
        }),
      ),
  })
  .strict();

const wave = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'a wave name: letters, digits, _, . and -'),
    /** Pick targets by name, */
    names: z.array(targetName).min(1, 'names is empty: list at least one target').optional(),
    /** or every target with all these tags, */
    tags: z.record(z.string()).optional(),
    /** or a share of the targets no earlier wave took: "10%", or "rest". */
    share: z.string().optional(),
    /** Targets of this wave changed at once. */
    parallelism: z.number().int().min(1).max(1000).default(1),
    /** halt: stop at the first failed target; continue: go on up to maxFailures. */
    onFailure: z.enum(['halt', 'continue'], { errorMap: () => ({ message: 'onFailure must be "halt" or "continue"' }) }).default('halt'),
    /** With continue: failed targets tolerated, a count (3) or a share of the wave ("10%": rounded down, at least 1; 10% of 5 is 1). */
    maxFailures: z
      .union([z.number().int().min(0), z.string().regex(/^\d+(\.\d+)?%$/, 'maxFailures: a count (3) or a share ("10%")')])
      .optional(),
    /** Wait for `stagefill approve <fleet>` after this wave, before the next one. */
    approval: z.boolean().default(false),
    /** After the wave's targets completed: its checks on every one of them, every `every` for `duration`; a breach fails that target. */
    soak: waveSoak.optional(),
  })
  .strict()
  .superRefine((w, ctx) => {
    const given = (['names', 'tags', 'share'] as const).filter((k) => w[k] !== undefined);
    if (given.length !== 1)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: given[1] !== undefined ? [given[1]] : [],
        message: `a wave picks its targets one way: give exactly one of names, tags or share (it has ${given.length ? given.join(' and ') : 'none'})`,
      });
    if (w.share !== undefined && parseShare(w.share) === undefined)
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['share'], message: `"${w.share}" is not a share; write e.g. "10%" or "rest"` });
    if (w.maxFailures !== undefined && w.onFailure === 'halt')
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['maxFailures'],
        message: 'maxFailures applies with onFailure: continue (halt stops at the first failure); set onFailure: continue or remove it',
      });
  });

/**
 * The fleet's targets by a read-only query against a catalog database (for
 * fleets that change every day): its first column is target names. `plan`
 * and `start` run it, so the workflow gets names, never the catalog's URL.
 */
const targetsQuery = z
  .object({
    query: z.string().min(1, 'empty: give a read-only query whose first column is target names'),
    /** A target of the targets file whose database holds the catalog, */
    catalog: targetName.optional(),
    /** or the environment variable holding the catalog's URL. */
    catalogEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'the name of an environment variable, e.g. CATALOG_DATABASE_URL')
      .optional(),
    /** The query's statement timeout. */
    timeout: duration.default('30s'),
  })
  .strict()
  .superRefine((t, ctx) => {
    if ((t.catalog === undefined) === (t.catalogEnv === undefined))
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: [],
        message:
          'give the catalog database one way: catalog (a target of the targets file) or catalogEnv (an environment variable holding its URL)',
      });
  });

export const fleetSpecSchema = z
  .object({
    kind: z.literal('fleet'),
    name: backfillFields.name,
    /** The rollout or backfill every target runs: inline, or a path to its spec file (relative to this file). */
    change: z.union([z.string().min(1), z.record(z.unknown())], {
      errorMap: () => ({ message: 'change is required: an inline rollout or backfill spec, or the path of one' }),
    }),
    /** A target whose table differs from the others': refuse the fleet (default) or leave that target out. */
    onShapeMismatch: z.enum(['refuse', 'skip']).default('refuse'),
    /** Without it: every target of the targets file; with it: the names a catalog query returns. */
    targets: targetsQuery.optional(),
    waves: z.array(wave).min(1, 'a fleet needs at least one wave'),
    /** A webhook for the fleet's events: each wave started, completed or halted, the fleet finished or rolled back. */
    notify: notify.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const seen = new Set<string>();
    s.waves.forEach((w, i) => {
      if (seen.has(w.name))
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['waves', i, 'name'], message: `wave "${w.name}" is named twice` });
      seen.add(w.name);
    });
  });

export interface FleetSpec {
  kind: 'fleet';
  name: string;
  /** The change, parsed: what every target runs. */
  change: Spec;
  onShapeMismatch: 'refuse' | 'skip';
  /** The targets by a catalog query; `names`: what it returned when `plan` or `start` ran it (the waves then name them). */
  targets?: TargetsQuery;
  waves: WaveRule[];
  /** The fleet's own webhook (its targets' changes notify per their own spec). */
  notify?: NotifySettings;
}

export interface TargetsQuery {
  query: string;
  catalog?: string;
  catalogEnv?: string;
  timeoutMs: number;
  names?: string[];
}

/**
 * Validates a fleet spec; `readChange` loads a change given as a path. Every
 * problem is a SpecError naming its field (a change's own problems under `change.`).
 */
export function parseFleetSpec(input: unknown, source?: string, readChange?: (path: string) => unknown): FleetSpec {
  const r = fleetSpecSchema.safeParse(input);
  if (!r.success)
    throw new SpecError(
      r.error.issues.map((i) => ({
        path: i.path.join('.'),
        message:
          i.code === 'unrecognized_keys'
            ? `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}; remove or check the spelling`
            : i.message,
      })),
      source,
    );
  const s = r.data;
  let raw: unknown = s.change;
  if (typeof s.change === 'string') {
    if (!readChange) throw new SpecError([{ path: 'change', message: 'a path here needs the fleet spec read from a file' }], source);
    raw = readChange(s.change);
  }
  if ((raw as { kind?: unknown })?.kind === 'fleet')
    throw new SpecError(
      [{ path: 'change.kind', message: 'a fleet changes each target with a rollout or a backfill, not another fleet' }],
      source,
    );
  let change: Spec;
  try {
    change = parseSpec(raw, source);
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    throw new SpecError(
      err.issues.map((i) => ({ path: i.path ? `change.${i.path}` : 'change', message: i.message })),
      source,
    );
  }
  return {
    kind: 'fleet',
    name: s.name,
    change,
    onShapeMismatch: s.onShapeMismatch,
    ...(s.targets
      ? {
          targets: {
            query: s.targets.query,
            ...(s.targets.catalog !== undefined ? { catalog: s.targets.catalog } : {}),
            ...(s.targets.catalogEnv !== undefined ? { catalogEnv: s.targets.catalogEnv } : {}),
            timeoutMs: s.targets.timeout,
          },
        }
      : {}),
    waves: s.waves.map((w) => ({
      name: w.name,
      select: w.names ? { names: w.names } : w.tags ? { tags: w.tags } : { share: parseShare(w.share!)! },
      parallelism: w.parallelism,
      onFailure: w.onFailure,
      maxFailures:
        w.maxFailures === undefined
          ? undefined
          : typeof w.maxFailures === 'number'
            ? w.maxFailures
            : { percent: parseFloat(w.maxFailures) },
      approval: w.approval,
      ...(w.soak ? { soak: { durationMs: w.soak.duration, everyMs: w.soak.every, checks: w.soak.checks } } : {}),
    })),
    ...(s.notify ? { notify: s.notify } : {}),
  };
}

/** The tables a fleet's change touches on every target. */
export function changeTables(change: Spec): string[] {
  if (change.kind === 'backfill') return [change.table];
  const tables = new Set<string>([change.table]);
  for (const s of change.steps) if ((s as { table?: string }).table) tables.add((s as { table: string }).table);
  return [...tables];
}
