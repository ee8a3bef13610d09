import { z } from 'zod';
import { parseDuration } from './duration';
import { isValidTimeZone } from './window';
import { hasSecondStatement } from './text';
import { THROTTLE_LIMITS, THROTTLE_DEFAULTS, PROBE_STATEMENT, PROBE_TRANSACTION_MAX } from './throttle-limits';
import { NOTIFY_EVENTS, isWebhookUrl } from './notify';
import { onlyItem } from './checked';

/**
 * The zod pieces every spec is made of: identifiers, durations, SQL
 * fragments, the backfill fields and the fields every rollout step has.
 * Pure. steps/spec.ts and each step kind's steps/<kind>/schema.ts build on
 * these, so this file imports no step kind (no import cycle).
 */

// Plain SQL identifiers only: quotes, dots, semicolons and spaces never reach a
// statement, and stagefill quotes every identifier it writes anyway.
export const IDENT = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
export const identifier = (what: string) =>
  z
    .string({ required_error: `${what} is required` })
    .regex(
      IDENT,
      `${what} must be a plain SQL identifier (letters, digits, _ and $; not starting with a digit; at most 63 characters), without quotes`,
    );

/** A required, non-empty list of column names in `field`; a missing one is refused saying what it is for. */
export const columnNames = (field: string, forWhat?: string) =>
  z.array(identifier(`${field}[]`), { required_error: `${field} is required${forWhat ? `: ${forWhat}` : ''}` }).min(1, `${field} is empty`);

export const tableName = z
  .string({ required_error: 'table is required, e.g. "public.orders"' })
  .refine((v) => v.split('.').length <= 2 && v.split('.').every((p) => IDENT.test(p)), {
    message: 'table must be "schema.table" or "table" made of plain SQL identifiers (letters, digits, _ and $), without quotes',
  });

/** A duration: "30s", "15m", "4h", "1h30m", or milliseconds. Parsed to milliseconds. */
export const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${v}" is not a duration; write e.g. "30s", "15m", "4h" or "1h30m"` });
    return z.NEVER;
  }
  return ms;
});

export const expectation = z.union(
  [
    z.object({ eq: z.number() }).strict(),
    z.object({ lte: z.number() }).strict(),
    z.object({ gte: z.number() }).strict(),
    z.object({ lt: z.number() }).strict(),
    z.object({ gt: z.number() }).strict(),
    z.object({ between: z.tuple([z.number(), z.number()]) }).strict(),
  ],
  { errorMap: () => ({ message: 'expect must be one of {eq: n}, {lte: n}, {gte: n}, {lt: n}, {gt: n}, {between: [a, b]}' }) },
);

const READ_ONLY = /^\s*(select|with|values)\b/i;
const DDL =
  /^\s*(create|alter|drop|truncate|grant|revoke|comment|reindex|vacuum|cluster|lock|copy|do|call|begin|commit|rollback|set|reset)\b/i;
const WRITE = /^\s*(update|insert|delete|with|merge)\b/i;

export const rangeSql = (what: string, mustWrite: boolean) =>
  z
    .string({ required_error: `${what} is required` })
    .min(1, `${what} is empty`)
    .superRefine((sql, ctx) => {
      const fail = (message: string) => ctx.addIssue({ code: z.ZodIssueCode.custom, message });
      if (!/(?<!:):lo\b/.test(sql) || !/(?<!:):hi\b/.test(sql)) {
        fail(
          `${what} must use both :lo and :hi to bound its rows (e.g. "WHERE id >= :lo AND id < :hi"); they are bound as parameters for each chunk's half-open range`,
        );
      }
      if (DDL.test(sql))
        fail(
          `${what} must be DML (UPDATE, INSERT, DELETE, MERGE or WITH ...), not DDL or a session command; put schema changes in rollout steps`,
        );
      else if (mustWrite && !WRITE.test(sql)) fail(`${what} must start with UPDATE, INSERT, DELETE, MERGE or WITH`);
      else if (!mustWrite && !READ_ONLY.test(sql)) fail(`${what} must be a query (SELECT, WITH or VALUES) returning one value`);
      if (hasSecondStatement(sql)) fail(`${what} must be a single statement; remove the extra ";"-separated statement`);
    });

export const query = (what: string) =>
  z
    .string({ required_error: `${what} is required` })
    .min(1, `${what} is empty`)
    .superRefine((sql, ctx) => {
      if (!READ_ONLY.test(sql))
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${what} must be a query (SELECT, WITH or VALUES) returning one value` });
      if (hasSecondStatement(sql)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${what} must be a single statement` });
    });

/** A key value: one column's value, or a composite key's as a list ([3, 1200]), kept as its JSON text. */
export const keyValue = z
  .union([z.string(), z.number(), z.array(z.union([z.string(), z.number()])).min(1)])
  .transform((v) => (Array.isArray(v) ? JSON.stringify(v.map(String)) : String(v)));

/** `key:` one column, or a list of columns for a composite key (walked as a row value, in key order). */
export const backfillKey = z
  .union(
    [identifier('key'), z.array(identifier('key[]')).min(1, 'key needs at least one column').max(8, 'key may have at most 8 columns')],
    {
      errorMap: (issue, ctx) =>
        issue.code === 'invalid_union'
          ? { message: 'key must be a column name or a list of column names, e.g. id or [tenant_id, id]' }
          : { message: ctx.defaultError },
    },
  )
  .refine((k) => typeof k === 'string' || new Set(k).size === k.length, 'key must not name a column twice')
  .transform((k) => (Array.isArray(k) ? (onlyItem(k) ?? k) : k)); // [id] reads as id

export const chunkCheck = z.object({ name: z.string().min(1), sql: rangeSql('validate[].sql', false), expect: expectation }).strict();

const L = THROTTLE_LIMITS;
/** One statement of a probe transaction: a query or a row write, one statement each. */
const probeStatement = z
  .string({ invalid_type_error: 'each of throttle.latency.probe must be a statement (a string)' })
  .min(1, 'throttle.latency.probe has an empty statement')
  .superRefine((sql, ctx) => {
    if (!PROBE_STATEMENT.test(sql))
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message:
          'each of throttle.latency.probe must start with SELECT, WITH, VALUES, INSERT, UPDATE or DELETE (no DDL, no BEGIN/COMMIT: the probe runs them as one transaction)',
      });
    if (hasSecondStatement(sql))
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: 'each of throttle.latency.probe must be a single statement: one list item each',
      });
  });
const latencyBudget = z
  .object({
    p99Ms: z
      .number()
      .min(L.p99Ms.min, `throttle.latency.p99Ms must be at least ${L.p99Ms.min}`)
      .max(L.p99Ms.max, `throttle.latency.p99Ms must be at most ${L.p99Ms.max}`)
      .optional(),
    p99Ratio: z
      .number()
      .min(L.p99Ratio.min, `throttle.latency.p99Ratio must be at least ${L.p99Ratio.min} (times the p99 measured before the first chunk)`)
      .max(L.p99Ratio.max, `throttle.latency.p99Ratio must be at most ${L.p99Ratio.max}`)
      .optional(),
    probe: z
      .union([
        query('throttle.latency.probe'),
        z
          .array(probeStatement, { invalid_type_error: 'throttle.latency.probe must be a query or a list of statements' })
          .min(1, 'throttle.latency.probe: a transaction needs at least one statement')
          .max(PROBE_TRANSACTION_MAX, `throttle.latency.probe: a transaction of at most ${PROBE_TRANSACTION_MAX} statements`),
      ])
      .optional(),
    probeEveryMs: z.number().int().min(L.probeEveryMs.min).max(L.probeEveryMs.max).optional(),
    baselineMs: z
      .number()
      .int()
      .min(L.baselineMs.min, `throttle.latency.baselineMs must be at least ${L.baselineMs.min} (ms)`)
      .max(L.baselineMs.max, `throttle.latency.baselineMs must be at most ${L.baselineMs.max} (ms)`)
      .optional(),
    refresh: z
      .union(
        [
          z.literal(false),
          z
            .object({
              everyMs: z
                .number()
                .int()
                .min(L.refreshEveryMs.min, `throttle.latency.refresh.everyMs must be at least ${L.refreshEveryMs.min} (ms)`)
                .max(L.refreshEveryMs.max, `throttle.latency.refresh.everyMs must be at most ${L.refreshEveryMs.max} (ms)`)
                .optional(),
              holdMs: z
                .number()
                .int()
                .min(L.refreshHoldMs.min, `throttle.latency.refresh.holdMs must be at least ${L.refreshHoldMs.min} (ms)`)
                .max(L.refreshHoldMs.max, `throttle.latency.refresh.holdMs must be at most ${L.refreshHoldMs.max} (ms)`)
                .optional(),
            })
            .strict()
            .refine((r) => r.everyMs === undefined || r.holdMs === undefined || r.holdMs * 2 <= r.everyMs, {
              message: 'throttle.latency.refresh.holdMs must be at most half of everyMs',
            }),
        ],
        {
          errorMap: (issue, ctx) =>
            issue.code === 'invalid_union'
              ? { message: 'throttle.latency.refresh must be false (measure the baseline once) or { everyMs, holdMs }' }
              : { message: ctx.defaultError },
        },
      )
      .optional(),
  })
  .strict()
  .refine((b) => (b.p99Ms === undefined) !== (b.p99Ratio === undefined), {
    message: 'throttle.latency needs exactly one of p99Ms (milliseconds) or p99Ratio (times the p99 measured before the first chunk)',
  });

export const throttle = z
  .object({
    maxRowsPerSecond: z.number().positive('throttle.maxRowsPerSecond must be > 0 (omit it for no limit)').optional(),
    targetChunkMs: z
      .number()
      .int()
      .min(L.targetChunkMs.min, `throttle.targetChunkMs must be at least ${L.targetChunkMs.min}`)
      .max(L.targetChunkMs.max)
      .optional(),
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
    onReplicaMissing: z
      .enum(['hold', 'ignore'], { errorMap: () => ({ message: 'throttle.onReplicaMissing must be "hold" or "ignore"' }) })
      .optional(),
    flushAfterKb: z
      .number()
      .int('throttle.flushAfterKb must be whole kB')
      .min(L.flushAfterKb.min, "throttle.flushAfterKb must be 0 (the server's backend_flush_after) or more")
      .max(L.flushAfterKb.max, `throttle.flushAfterKb must be at most ${L.flushAfterKb.max} (PostgreSQL takes at most 2 MB)`)
      .optional(),
  })
  .strict();

export const window = z
  .object({
    start: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'window.start must be a 24-hour local time "HH:MM", e.g. "01:00"'),
    duration: duration.refine((ms) => ms >= 1000, 'window.duration must be at least 1s'),
    timeZone: z.string().refine(isValidTimeZone, 'window.timeZone must be an IANA time zone such as "UTC" or "Europe/Berlin"').optional(),
  })
  .strict();

/** `notify:` a webhook for this spec's runs (docs/operations.md "Notifications"), beside the worker's STAGEFILL_WEBHOOK_URL. */
export const notify = z
  .object({
    webhook: z
      .string({ required_error: 'notify.webhook is required: the http(s) URL stagefill POSTs its notifications to' })
      .refine(isWebhookUrl, (v) => ({
        message: `notify.webhook must be an http:// or https:// URL, e.g. "https://hooks.slack.com/services/T000/B000/XXXX" (got "${v}")`,
      })),
    on: z
      .array(z.enum(NOTIFY_EVENTS, { errorMap: () => ({ message: `notify.on lists events out of ${NOTIFY_EVENTS.join(', ')}` }) }))
      .min(1, `notify.on needs at least one event (${NOTIFY_EVENTS.join(', ')}); leave it out for all of them`)
      .optional(),
  })
  .strict();

/** The backfill fields shared by `kind: backfill` specs and rollout `backfill` steps. */
export const backfillFields = {
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, 'name must be 1-100 letters, digits, "_", "-" or ".", starting with a letter or digit'),
  table: tableName,
  key: backfillKey,
  range: z.object({ from: keyValue.optional(), to: keyValue.optional() }).strict().optional(),
  chunkSize: z
    .number({ required_error: 'chunkSize is required: rows per chunk, e.g. 1000' })
    .int('chunkSize must be a whole number')
    .min(L.chunkSize.min, `chunkSize must be at least ${L.chunkSize.min}`)
    .max(L.chunkSize.max, `chunkSize must be at most ${L.chunkSize.max.toLocaleString('en-US')}`),
  parallelism: z
    .number()
    .int('parallelism must be a whole number')
    .min(L.parallelism.min, `parallelism must be at least ${L.parallelism.min}`)
    .max(L.parallelism.max, `parallelism must be at most ${L.parallelism.max} (each lane holds a database connection)`)
    .default(THROTTLE_DEFAULTS.parallelism),
  transform: rangeSql('transform', true),
  validate: z.array(chunkCheck).optional(),
  throttle: throttle.optional(),
  window: window.optional(),
  lockTimeoutMs: z.number().int().min(1).max(600_000).default(2000),
  statementTimeoutMs: z.number().int().min(1).max(3_600_000).default(60_000),
};

export const backfillSpec = z.object({ kind: z.literal('backfill'), ...backfillFields, notify: notify.optional() }).strict();
export type BackfillSpec = z.infer<typeof backfillSpec>;

// ---- rollout steps -------------------------------------------------------

/** How long DDL waits for its table lock before giving up (Temporal retries it with backoff): a rollout's, or one step's own. */
export const lockTimeoutMs = z
  .number()
  .int()
  .min(1, 'lockTimeoutMs must be at least 1')
  .max(600_000, 'lockTimeoutMs must be at most 600000 (10 minutes)')
  .optional();

export const stepBase = {
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'id must be 1-63 letters, digits, "_", "-" or "."')
    .optional(),
  dependsOn: z.array(z.string()).optional(),
  /** The table this step works on; the rollout's table when absent. */
  table: tableName.optional(),
  /** How long this step's DDL waits for its lock before giving up (Temporal retries it with backoff); the rollout's lockTimeoutMs, else 3s. */
  lockTimeoutMs,
};

/** A step kind's schema: `kind`, the fields every step has (stepBase), then the kind's own; unknown fields refused. */
export const stepSchema = <K extends string, T extends z.ZodRawShape>(kind: K, shape: T) =>
  z.object({ kind: z.literal(kind), ...stepBase, ...shape }).strict();

/** The DDL lock timeout when neither the step nor the rollout sets one. */
export const DEFAULT_LOCK_TIMEOUT_MS = 3000;

export const onFailure = z.enum(['rollback', 'pause']).default('rollback');

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
  .refine((c) => (c.expect !== undefined) !== Boolean(c.unchanged), {
    message: 'a check needs exactly one of expect (a bound) or unchanged: true (equal to its value at the rollout start)',
  });
export type GateCheck = z.infer<typeof gateCheck>;

export const sqlType = z
  .string({ required_error: 'type is required, e.g. "bigint" or "numeric(12,2)"' })
  .regex(
    /^[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+(\s*,\s*\d+)?\s*\))?(\[\])?$/,
    'type must be a plain SQL type such as "bigint", "text", "numeric(12,2)" or "timestamptz"',
  );

/** A SQL expression over the row (NEW in triggers, the table's row in backfills): one expression, no statements. */
export const expression = (what: string) =>
  z
    .string({ required_error: `${what} is required: a SQL expression over the row's columns` })
    .min(1, `${what} is empty`)
    .refine(
      (e) => !hasSecondStatement(e) && !/;/.test(e.replace(/'(?:[^']|'')*'/g, '')),
      `${what} must be one SQL expression, without ";"`,
    );

export const backfillTuning = {
  chunkSize: backfillFields.chunkSize.default(THROTTLE_DEFAULTS.chunkSize),
  parallelism: backfillFields.parallelism,
  key: identifier('key').default('id'),
  throttle: throttle.optional(),
  lockTimeoutMs: backfillFields.lockTimeoutMs,
  statementTimeoutMs: backfillFields.statementTimeoutMs,
};
