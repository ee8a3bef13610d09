import { z } from 'zod';
import { parseDuration } from '../plan/duration';
import { isValidTimeZone } from '../plan/window';
import { normalizeGraph, graphProblems } from '../plan/graph';
import { THROTTLE_LIMITS } from '../plan/throttle';

/**
 * The specs a platform team writes: a backfill, or a rollout of steps. These
 * schemas are the single source of truth; the types are inferred from them.
 * Pure: used by the CLI, the client library and (as types) the workflows.
 */

// Plain SQL identifiers only: quotes, dots, semicolons and spaces never reach a
// statement, and stagefill quotes every identifier it writes anyway.
const IDENT = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
const identifier = (what: string) =>
  z.string({ required_error: `${what} is required` }).regex(IDENT, `${what} must be a plain SQL identifier (letters, digits, _ and $; not starting with a digit; at most 63 characters), without quotes`);

export const tableName = z
  .string({ required_error: 'table is required, e.g. "public.orders"' })
  .refine((v) => v.split('.').length <= 2 && v.split('.').every((p) => IDENT.test(p)), {
    message: 'table must be "schema.table" or "table" made of plain SQL identifiers (letters, digits, _ and $), without quotes',
  });

/** A duration: "30s", "15m", "4h", "1h30m", or milliseconds. Parsed to milliseconds. */
export const duration = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${v}" is not a duration; write e.g. "30s", "15m", "4h" or "1h30m"` });
      return z.NEVER;
    }
    return ms;
  });

export const expectation = z.union([
  z.object({ eq: z.number() }).strict(),
  z.object({ lte: z.number() }).strict(),
  z.object({ gte: z.number() }).strict(),
  z.object({ lt: z.number() }).strict(),
  z.object({ gt: z.number() }).strict(),
  z.object({ between: z.tuple([z.number(), z.number()]) }).strict(),
], { errorMap: () => ({ message: 'expect must be one of {eq: n}, {lte: n}, {gte: n}, {lt: n}, {gt: n}, {between: [a, b]}' }) });

const READ_ONLY = /^\s*(select|with|values)\b/i;
const DDL = /^\s*(create|alter|drop|truncate|grant|revoke|comment|reindex|vacuum|cluster|lock|copy|do|call|begin|commit|rollback|set|reset)\b/i;
const WRITE = /^\s*(update|insert|delete|with|merge)\b/i;

/** One statement: a trailing semicolon is fine; a second statement is not. */
function hasSecondStatement(sql: string): boolean {
  const stripped = sql
    .replace(/'(?:[^']|'')*'/g, "''")
    .replace(/"(?:[^"]|"")*"/g, '""')
    .replace(/--[^\n]*/g, '')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .trim()
    .replace(/;\s*$/, '');
  return stripped.includes(';');
}

const rangeSql = (what: string, mustWrite: boolean) =>
  z
    .string({ required_error: `${what} is required` })
    .min(1, `${what} is empty`)
    .superRefine((sql, ctx) => {
      const fail = (message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, message });
      if (!/(?<!:):lo\b/.test(sql) || !/(?<!:):hi\b/.test(sql)) {
        fail(`${what} must use both :lo and :hi to bound its rows (e.g. "WHERE id >= :lo AND id < :hi"); they are bound as parameters for each chunk's half-open range`);
      }
      if (DDL.test(sql)) fail(`${what} must be DML (UPDATE, INSERT, DELETE, MERGE or WITH ...), not DDL or a session command; put schema changes in rollout steps`);
      else if (mustWrite && !WRITE.test(sql)) fail(`${what} must start with UPDATE, INSERT, DELETE, MERGE or WITH`);
      else if (!mustWrite && !READ_ONLY.test(sql)) fail(`${what} must be a query (SELECT, WITH or VALUES) returning one value`);
      if (hasSecondStatement(sql)) fail(`${what} must be a single statement; remove the extra ";"-separated statement`);
    });

const query = (what: string) =>
  z
    .string({ required_error: `${what} is required` })
    .min(1, `${what} is empty`)
    .superRefine((sql, ctx) => {
      if (!READ_ONLY.test(sql)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${what} must be a query (SELECT, WITH or VALUES) returning one value` });
      if (hasSecondStatement(sql)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${what} must be a single statement` });
    });

const keyValue = z.union([z.string(), z.number()]).transform(String);

const chunkCheck = z
  .object({ name: z.string().min(1), sql: rangeSql('validate[].sql', false), expect: expectation })
  .strict();

const L = THROTTLE_LIMITS;
const latencyBudget = z
  .object({
    p99Ms: z.number().min(L.p99Ms.min, `throttle.latency.p99Ms must be at least ${L.p99Ms.min}`).max(L.p99Ms.max, `throttle.latency.p99Ms must be at most ${L.p99Ms.max}`).optional(),
    p99Ratio: z
      .number()
      .min(L.p99Ratio.min, `throttle.latency.p99Ratio must be at least ${L.p99Ratio.min} (times the p99 measured before the first chunk)`)
      .max(L.p99Ratio.max, `throttle.latency.p99Ratio must be at most ${L.p99Ratio.max}`)
      .optional(),
    probe: query('throttle.latency.probe').optional(),
    probeEveryMs: z.number().int().min(L.probeEveryMs.min).max(L.probeEveryMs.max).optional(),
  })
  .strict()
  .refine((b) => (b.p99Ms === undefined) !== (b.p99Ratio === undefined), {
    message: 'throttle.latency needs exactly one of p99Ms (milliseconds) or p99Ratio (times the p99 measured before the first chunk)',
  });

const throttle = z
  .object({
    maxRowsPerSecond: z.number().positive('throttle.maxRowsPerSecond must be > 0 (omit it for no limit)').optional(),
    targetChunkMs: z.number().int().min(L.targetChunkMs.min, `throttle.targetChunkMs must be at least ${L.targetChunkMs.min}`).max(L.targetChunkMs.max).optional(),
    minChunkSize: z.number().int().positive().optional(),
    maxChunkSize: z.number().int().positive().max(L.chunkSize.max).optional(),
    healthCheck: z
      .object({
        sql: query('throttle.healthCheck.sql'),
        max: z.number({ required_error: 'throttle.healthCheck.max is required: back off while the probe returns more than this' }),
        every: duration.default('1s'),
        backoff: duration.default('2s'),
      })
      .strict()
      .optional(),
    latency: latencyBudget.optional(),
    maxReplicaLagMs: z
      .number()
      .int('throttle.maxReplicaLagMs must be whole milliseconds')
      .min(L.maxReplicaLagMs.min, `throttle.maxReplicaLagMs must be at least ${L.maxReplicaLagMs.min}`)
      .max(L.maxReplicaLagMs.max)
      .optional(),
    onReplicaMissing: z.enum(['hold', 'ignore'], { errorMap: () => ({ message: 'throttle.onReplicaMissing must be "hold" or "ignore"' }) }).optional(),
  })
  .strict();

const window = z
  .object({
    start: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'window.start must be a 24-hour local time "HH:MM", e.g. "01:00"'),
    duration: duration.refine((ms) => ms >= 1000, 'window.duration must be at least 1s'),
    timeZone: z.string().refine(isValidTimeZone, 'window.timeZone must be an IANA time zone such as "UTC" or "Europe/Berlin"').optional(),
  })
  .strict();

/** The backfill fields shared by `kind: backfill` specs and rollout `backfill` steps. */
const backfillFields = {
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, 'name must be 1-100 letters, digits, "_", "-" or ".", starting with a letter or digit'),
  table: tableName,
  key: identifier('key'),
  range: z.object({ from: keyValue.optional(), to: keyValue.optional() }).strict().optional(),
  chunkSize: z.number({ required_error: 'chunkSize is required: rows per chunk, e.g. 1000' }).int('chunkSize must be a whole number').min(1, 'chunkSize must be at least 1').max(1_000_000, 'chunkSize must be at most 1,000,000'),
  parallelism: z.number().int('parallelism must be a whole number').min(1, 'parallelism must be at least 1').max(64, 'parallelism must be at most 64 (each lane holds a database connection)').default(2),
  transform: rangeSql('transform', true),
  validate: z.array(chunkCheck).optional(),
  throttle: throttle.optional(),
  window: window.optional(),
  lockTimeoutMs: z.number().int().min(1).max(600_000).default(2000),
  statementTimeoutMs: z.number().int().min(1).max(3_600_000).default(60_000),
};

export const backfillSpec = z.object({ kind: z.literal('backfill'), ...backfillFields }).strict();
export type BackfillSpec = z.infer<typeof backfillSpec>;
export type BackfillSpecInput = z.input<typeof backfillSpec>;

// ---- rollout steps -------------------------------------------------------

const stepBase = {
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'id must be 1-63 letters, digits, "_", "-" or "."').optional(),
  dependsOn: z.array(z.string()).optional(),
  /** The table this step works on; the rollout's table when absent. */
  table: tableName.optional(),
};

const onFailure = z.enum(['rollback', 'pause']).default('rollback');

export const gateCheck = z
  .object({
    name: z.string().min(1),
    sql: query('checks[].sql'),
    /** A bound for the value the query returns. */
    expect: expectation.optional(),
    /** The value must equal (within tolerance) what the same query returned when the rollout began. */
    unchanged: z.boolean().optional(),
    tolerance: z.number().min(0).default(0),
  })
  .strict()
  .refine((c) => (c.expect !== undefined) !== Boolean(c.unchanged), { message: 'a check needs exactly one of expect (a bound) or unchanged: true (equal to its value at the rollout start)' });
export type GateCheck = z.infer<typeof gateCheck>;

const sqlType = z
  .string({ required_error: 'type is required, e.g. "bigint" or "numeric(12,2)"' })
  .regex(/^[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+(\s*,\s*\d+)?\s*\))?(\[\])?$/, 'type must be a plain SQL type such as "bigint", "text", "numeric(12,2)" or "timestamptz"');

/** A SQL expression over the row (NEW in triggers, the table's row in backfills): one expression, no statements. */
const expression = (what: string) =>
  z
    .string({ required_error: `${what} is required: a SQL expression over the row's columns` })
    .min(1, `${what} is empty`)
    .refine((e) => !hasSecondStatement(e) && !/;/.test(e.replace(/'(?:[^']|'')*'/g, '')), `${what} must be one SQL expression, without ";"`);

const backfillTuning = {
  chunkSize: backfillFields.chunkSize.default(5000),
  parallelism: backfillFields.parallelism,
  key: identifier('key').default('id'),
  throttle: throttle.optional(),
  lockTimeoutMs: backfillFields.lockTimeoutMs,
  statementTimeoutMs: backfillFields.statementTimeoutMs,
};

export const addColumnStep = z
  .object({ kind: z.literal('addColumn'), ...stepBase, column: identifier('column'), type: sqlType, up: expression('up'), default: z.string().optional(), backfill: z.object(backfillTuning).strict().optional() })
  .strict();

export const alterColumnStep = z
  .object({
    kind: z.literal('alterColumn'),
    ...stepBase,
    column: identifier('column'),
    newName: identifier('newName').optional(),
    newType: sqlType.optional(),
    up: expression('up'),
    down: expression('down'),
    backfill: z.object(backfillTuning).strict().optional(),
  })
  .strict()
  .refine((s) => s.newName !== undefined || s.newType !== undefined, { message: 'alterColumn needs newName, newType or both' });

export const setNotNullStep = z.object({ kind: z.literal('setNotNull'), ...stepBase, column: identifier('column') }).strict();
export const addCheckStep = z.object({ kind: z.literal('addCheck'), ...stepBase, name: identifier('name'), expression: expression('expression') }).strict();
export const sqlStep = z
  .object({
    kind: z.literal('sql'),
    ...stepBase,
    apply: z.string({ required_error: 'apply is required' }).min(1),
    revert: z.string({ required_error: 'revert is required: a sql step must say how to undo it' }).min(1, 'revert is empty: a sql step must say how to undo it'),
  })
  .strict();
export const backfillStep = z
  .object({ kind: z.literal('backfill'), ...stepBase, ...backfillFields, name: backfillFields.name.optional(), table: tableName.optional(), key: backfillFields.key.default('id'), chunkSize: backfillFields.chunkSize.default(5000) })
  .strict();
export const gateStep = z.object({ kind: z.literal('gate'), ...stepBase, checks: z.array(gateCheck).min(1, 'a gate needs at least one check'), onFailure }).strict();
export const exposeStep = z
  .object({
    kind: z.literal('expose'),
    ...stepBase,
    version: z.number().int().min(1),
    /** Percentage of consumers the flag routes to this version (canary); 100 when absent. */
    percent: z.number().int().min(0).max(100).default(100),
  })
  .strict();
export const soakStep = z
  .object({ kind: z.literal('soak'), ...stepBase, duration, every: duration.default('30s'), checks: z.array(gateCheck).min(1, 'a soak needs at least one check'), onFailure })
  .strict();
export const approvalStep = z.object({ kind: z.literal('approval'), ...stepBase, timeout: duration.default('24h'), onTimeout: z.enum(['rollback', 'fail']).default('rollback') }).strict();
export const contractStep = z.object({ kind: z.literal('contract'), ...stepBase, drops: z.array(identifier('drops[]')).optional() }).strict();

const STEP_KINDS = ['addColumn', 'alterColumn', 'setNotNull', 'addCheck', 'sql', 'backfill', 'gate', 'expose', 'soak', 'approval', 'contract'] as const;
export type StepKind = (typeof STEP_KINDS)[number];

export const rolloutStep = z.discriminatedUnion(
  'kind',
  [addColumnStep, alterColumnStep.innerType(), setNotNullStep, addCheckStep, sqlStep, backfillStep, gateStep, exposeStep, soakStep, approvalStep, contractStep],
  { errorMap: (issue, ctx) => (issue.code === 'invalid_union_discriminator' ? { message: `kind must be one of ${STEP_KINDS.join(', ')}` } : { message: ctx.defaultError }) },
);

export const rolloutSpec = z
  .object({
    kind: z.literal('rollout'),
    name: backfillFields.name,
    table: tableName,
    /** How long after the new version is exposed a contract step must wait. */
    rollbackWindow: duration.default('0s'),
    maxConcurrentSteps: z.number().int().min(1).max(16).default(4),
    steps: z.array(rolloutStep).min(1, 'a rollout needs at least one step'),
  })
  .strict()
  .superRefine((spec, ctx) => {
    spec.steps.forEach((s, i) => {
      if (s.kind === 'alterColumn') {
        const r = alterColumnStep.safeParse(s);
        if (!r.success) for (const issue of r.error.issues) ctx.addIssue({ ...issue, path: ['steps', i, ...issue.path] });
      }
    });
    const graph = normalizeGraph(spec.steps, spec.table);
    for (const p of graphProblems(graph)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['steps', p.index, p.field], message: p.message });
  });

export type RolloutSpec = z.infer<typeof rolloutSpec>;
export type RolloutSpecInput = z.input<typeof rolloutSpec>;
export type RolloutStep = z.infer<typeof rolloutStep>;

export const spec = z.discriminatedUnion('kind', [backfillSpec, rolloutSpec.innerType()], {
  errorMap: (issue, ctx) => (issue.code === 'invalid_union_discriminator' ? { message: 'kind must be "backfill" or "rollout"' } : { message: ctx.defaultError }),
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
      const best = [...i.unionErrors].sort((a, b) => b.issues[0].path.length - a.issues[0].path.length)[0];
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
  return r.data as Spec;
}

export function parseBackfillSpec(input: unknown, source?: string): BackfillSpec {
  const r = backfillSpec.safeParse(input);
  if (!r.success) throw toSpecError(r.error, source);
  return r.data;
}

export function parseRolloutSpec(input: unknown, source?: string): RolloutSpec {
  const r = rolloutSpec.safeParse(input);
  if (!r.success) throw toSpecError(r.error, source);
  return r.data;
}
