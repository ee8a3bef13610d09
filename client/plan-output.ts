import type { Spec } from '../steps/spec';
import { planRollout, formatRolloutPlan, formatMermaid } from '../steps/describe';
import { qualifiedName } from '../core/common/table-name';
import { formatDuration } from '../core/common/duration';
import { createPool } from '../db/pool';
import { KeyError } from '../db/backfill/keys';
import { planPartitions, resolveKey, normalizeInput } from '../activities/backfill/partition-plan';
import { keyLabel, keyTypeLabel, formatRange } from '../core/backfill/keys';
import { columnChangePlan, formatColumnChangePlan, rolloutRefusal } from './contract-plan';
import type { BackfillSpec } from '../core/common/fields';

/** Rows per second one lane sustains on a plain UPDATE (measured on 2 cores; see docs/BENCHMARKS.md). */
const ASSUMED_ROWS_PER_SECOND_PER_LANE = 200_000;

export type PlanFormat = 'text' | 'json' | 'mermaid';

/** `stagefill plan`: read-only. A backfill's chunk plan needs DATABASE_URL; without it the static plan is printed. */
export async function printPlan(spec: Spec, format: PlanFormat): Promise<string> {
  return (await planWithRefusal(spec, format)).text;
}

/** The plan's text, and why the rollout cannot start as written (read from the tables when DATABASE_URL is set), or null. */
export async function planWithRefusal(spec: Spec, format: PlanFormat): Promise<{ text: string; refusal: string | null }> {
  if (spec.kind === 'rollout') {
    const plan = planRollout(spec);
    // per altered column: what expand duplicates and what contract drops, renames and attaches (from the table when DATABASE_URL is set)
    const columns = await columnChangePlan(spec);
    const refusal = rolloutRefusal(columns);
    if (format === 'mermaid') return { text: formatMermaid(plan), refusal };
    if (format === 'json') return { text: JSON.stringify({ ...plan, columns }, null, 2), refusal };
    const extra = formatColumnChangePlan(columns);
    return { text: extra ? `${formatRolloutPlan(plan)}\n${extra}` : formatRolloutPlan(plan), refusal };
  }
  const bf = await backfillPlan(spec);
  return { text: backfillPlanText(spec, bf, format), refusal: bf.refusal ?? null };
}

function backfillPlanText(spec: BackfillSpec, bf: BackfillPlan, format: PlanFormat): string {
  if (format === 'json') return JSON.stringify({ ...bf, window: spec.window }, null, 2);
  if (format === 'mermaid') return `graph TD\n  backfill["backfill ${spec.name} on ${bf.table}"]`;
  const n = typeof spec.key === 'string' ? 1 : spec.key.length;
  const lines = [
    `backfill ${spec.name} on ${bf.table} by ${keyLabel(spec.key)}: chunks of ${spec.chunkSize} rows, ${spec.parallelism} lanes`,
  ];
  if (bf.keyType) lines.push(`key ${keyLabel(spec.key)}: ${keyTypeLabel(bf.keyType)}${bf.isUnique ? ', unique' : ''}`);
  if (bf.note) lines.push(bf.note);
  if (bf.range) {
    lines.push(
      `range ${formatRange(bf.range.from, bf.range.to, n)}: ~${bf.estimatedRows.toLocaleString('en-US')} rows, ~${bf.estimatedChunks.toLocaleString('en-US')} chunks, ~${formatDuration(bf.estimatedMs)} at ${ASSUMED_ROWS_PER_SECOND_PER_LANE.toLocaleString('en-US')} rows/s per lane`,
    );
    if (bf.leaves) lines.push(`partitioned: ${bf.leaves.length} leaf partitions; each key partition lies in one (a chunk never spans two)`);
    lines.push('partitions (cut from the data, so skewed keys still split evenly):');
    for (const [i, p] of bf.partitions.entries()) {
      lines.push(
        `  ${String(i).padStart(3)} ${p.leaf ? `${p.leaf} ` : ''}${formatRange(p.lo, p.hi, n)} ~${p.rows.toLocaleString('en-US')} rows, ~${Math.ceil(p.rows / spec.chunkSize)} chunks`,
      );
    }
  }
  if (spec.window)
    lines.push(`window: daily from ${spec.window.start} for ${formatDuration(spec.window.duration)} (${spec.window.timeZone ?? 'UTC'})`);
  return lines.join('\n');
}

interface BackfillPlan {
  table: string;
  /** The key's types as stagefill records them, e.g. "uuid" or ["integer","bigint"]. */
  keyType?: string;
  isUnique?: boolean;
  note?: string;
  /** Why it cannot run as written (no such table or key column, a range value not of the key's type): `plan` and `start` exit 2. */
  refusal?: string;
  /** A partitioned table's leaves. */
  leaves?: string[] | null;
  range?: { from: string; to: string };
  estimatedRows: number;
  estimatedChunks: number;
  estimatedMs: number;
  partitions: { lo: string; hi: string; rows: number; leaf?: string | null }[];
}

async function backfillPlan(spec: BackfillSpec): Promise<BackfillPlan> {
  const table = qualifiedName(spec.table);
  const empty: BackfillPlan = { table, estimatedRows: 0, estimatedChunks: 0, estimatedMs: 0, partitions: [] };
  const url = process.env.DATABASE_URL;
  if (!url) return { ...empty, note: 'set DATABASE_URL to see the chunk plan (ranges and row estimates) from the table itself' };
  const pool = createPool({ url, max: 1, applicationName: 'stagefill-plan' });
  try {
    // the builder the run's prepare activity uses: these are the partitions a start now would work
    const plan = await planPartitions(pool, { table, key: spec.key, range: spec.range, parallelism: spec.parallelism }).catch(
      (err: unknown) => {
        if (err instanceof KeyError) return { refusal: `backfill refused: ${err.message} (nothing was started)` };
        throw err;
      },
    );
    if ('refusal' in plan) return { ...empty, note: plan.refusal, refusal: plan.refusal };
    if (!plan.range) return { ...empty, keyType: plan.keyType, note: `${table} has no row in the range: nothing to backfill` };
    const rows = plan.partitions.reduce((s, p) => s + p.rows, 0);
    return {
      table,
      keyType: plan.keyType,
      isUnique: plan.isUnique,
      range: plan.range,
      leaves: plan.leaves,
      estimatedRows: rows,
      estimatedChunks: plan.partitions.reduce((s, p) => s + Math.ceil(p.rows / spec.chunkSize), 0),
      estimatedMs: Math.round((rows / (ASSUMED_ROWS_PER_SECOND_PER_LANE * spec.parallelism)) * 1000),
      partitions: plan.partitions,
      note: plan.isUnique
        ? undefined
        : `note: ${keyLabel(spec.key)} is not unique: a run of more than ${spec.chunkSize} rows with one key value is refused`,
    };
  } finally {
    await pool.end();
  }
}

/**
 * `start`'s check of a backfill before anything starts, when DATABASE_URL is
 * set: the table, its key columns and the range's values, as the run's
 * prepare reads them. A database the client cannot reach does not stop the
 * start (the worker may reach it where this machine does not): the run's
 * prepare checks the same.
 */
export async function backfillRefusalBeforeStart(
  spec: BackfillSpec,
  databaseUrl = process.env.DATABASE_URL,
  warn: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<string | null> {
  if (!databaseUrl) return null;
  const pool = createPool({ url: databaseUrl, max: 1, applicationName: 'stagefill-start' });
  try {
    const table = qualifiedName(spec.table);
    const { cols } = await resolveKey(pool, table, spec.key);
    if (spec.range?.from !== undefined) await normalizeInput(pool, cols, spec.range.from, 'range.from');
    if (spec.range?.to !== undefined) await normalizeInput(pool, cols, spec.range.to, 'range.to');
    return null;
  } catch (err) {
    if (err instanceof KeyError) return `backfill refused: ${err.message} (nothing was started)`;
    warn(
      `stagefill: could not read the table to check the backfill before it starts (${(err as Error)?.message ?? String(err)}); its prepare checks again`,
    );
    return null;
  } finally {
    await pool.end();
  }
}
