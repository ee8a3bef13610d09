import type { Spec, BackfillSpec } from '../spec';
import { planRollout, formatRolloutPlan, formatMermaid } from '../plan/describe';
import { qualifiedName } from '../plan/table-name';
import { formatDuration } from '../plan/duration';
import { createPool } from '../db/pool';
import { describeKey, keyExtent, partitionBounds, KEY_TYPES } from '../db/backfills';

/** Rows per second one lane sustains on a plain UPDATE (measured on 2 cores; see docs/BENCHMARKS.md). */
const ASSUMED_ROWS_PER_SECOND_PER_LANE = 200_000;

export type PlanFormat = 'text' | 'json' | 'mermaid';

/** `stagefill plan`: read-only. A backfill's chunk plan needs DATABASE_URL; without it the static plan is printed. */
export async function printPlan(spec: Spec, format: PlanFormat): Promise<string> {
  if (spec.kind === 'rollout') {
    const plan = planRollout(spec);
    if (format === 'json') return JSON.stringify(plan, null, 2);
    if (format === 'mermaid') return formatMermaid(plan);
    return formatRolloutPlan(plan);
  }
  const bf = await backfillPlan(spec);
  if (format === 'json') return JSON.stringify({ ...bf, window: spec.window }, null, 2);
  if (format === 'mermaid') return `graph TD\n  backfill["backfill ${spec.name} on ${bf.table}"]`;
  const lines = [`backfill ${spec.name} on ${bf.table} by ${spec.key}: chunks of ${spec.chunkSize} rows, ${spec.parallelism} lanes`];
  if (bf.note) lines.push(bf.note);
  if (bf.range) {
    lines.push(`range [${bf.range.from}, ${bf.range.to}): ~${bf.estimatedRows.toLocaleString('en-US')} rows, ~${bf.estimatedChunks.toLocaleString('en-US')} chunks, ~${formatDuration(bf.estimatedMs)} at ${ASSUMED_ROWS_PER_SECOND_PER_LANE.toLocaleString('en-US')} rows/s per lane`);
    lines.push('partitions (cut from the data, so skewed keys still split evenly):');
    for (const [i, p] of bf.partitions.entries()) lines.push(`  ${String(i).padStart(3)} [${p.lo}, ${p.hi}) ~${p.rows.toLocaleString('en-US')} rows, ~${Math.ceil(p.rows / spec.chunkSize)} chunks`);
  }
  if (spec.window) lines.push(`window: daily from ${spec.window.start} for ${formatDuration(spec.window.duration)} (${spec.window.timeZone ?? 'UTC'})`);
  return lines.join('\n');
}

interface BackfillPlan {
  table: string;
  note?: string;
  range?: { from: string; to: string };
  estimatedRows: number;
  estimatedChunks: number;
  estimatedMs: number;
  partitions: { lo: string; hi: string; rows: number }[];
}

async function backfillPlan(spec: BackfillSpec): Promise<BackfillPlan> {
  const table = qualifiedName(spec.table);
  const empty: BackfillPlan = { table, estimatedRows: 0, estimatedChunks: 0, estimatedMs: 0, partitions: [] };
  const url = process.env.DATABASE_URL;
  if (!url) return { ...empty, note: 'set DATABASE_URL to see the chunk plan (ranges and row estimates) from the table itself' };
  const pool = createPool({ url, max: 1, applicationName: 'stagefill-plan' });
  try {
    const info = await describeKey(pool, table, spec.key);
    if (!info.tableExists) return { ...empty, note: `table ${table} does not exist (yet)` };
    if (!info.keyType || !KEY_TYPES.includes(info.keyType)) return { ...empty, note: `key ${spec.key} is ${info.keyType ?? 'missing'}; it must be one of ${KEY_TYPES.join(', ')}` };
    const extent = await keyExtent(pool, table, spec.key, info.keyType);
    if (!extent) return { ...empty, note: `${table} is empty: nothing to backfill` };
    const range = { from: spec.range?.from ?? extent.from, to: spec.range?.to ?? extent.to };
    const partitions = await partitionBounds(pool, table, spec.key, info.keyType, range.from, range.to, spec.parallelism * 4);
    const rows = partitions.reduce((s, p) => s + p.rows, 0);
    return {
      table,
      range,
      estimatedRows: rows,
      estimatedChunks: partitions.reduce((s, p) => s + Math.ceil(p.rows / spec.chunkSize), 0),
      estimatedMs: Math.round((rows / (ASSUMED_ROWS_PER_SECOND_PER_LANE * spec.parallelism)) * 1000),
      partitions,
      note: info.hasIndex ? undefined : `warning: no index starts with ${spec.key}; the backfill will refuse to start`,
    };
  } finally {
    await pool.end();
  }
}
