import type { Queryable } from './pool';
import { own } from './identifiers';

/**
 * Read-only views of stagefill's own tables for operators: `stagefill history`
 * and the worker's backlog gauge. Nothing here writes.
 */

export interface GenerationSummary {
  generation: number;
  reason: string;
  rangeFrom: string;
  rangeTo: string;
  transformHash: string;
  rowsPlanned: number;
  createdAt: Date;
  chunks: number;
  rowsDone: number;
  partitionsDone: number;
  partitions: number;
  firstCommitAt: Date | null;
  lastCommitAt: Date | null;
  /** Median and 95th percentile of BEGIN..COMMIT per chunk. */
  chunkMsP50: number | null;
  chunkMsP95: number | null;
  workers: string[];
  /**
   * md5 over the generation's checkpoints (lo, hi, rows, transform hash per
   * committed chunk, in key order): a reviewer can recompute it from
   * stagefill.checkpoints and know the exact set of chunks that were applied.
   */
  checkpointHash: string | null;
}

/** Every generation of one backfill with its checkpoints summed up, oldest first. */
/** A generation row as the summary query returns it (bigint and numeric as text, as pg hands them over). */
interface GenerationSummaryRow {
  generation: number;
  reason: string;
  range_from: string;
  range_to: string;
  transform_hash: string;
  rows_total: string;
  created_at: Date;
  chunks: string;
  rows_done: string;
  first_commit: Date | null;
  last_commit: Date | null;
  p50: number | null;
  p95: number | null;
  workers: string[];
  checkpoint_hash: string | null;
  partitions_done: string;
  partitions: string;
}

export async function generationSummaries(db: Queryable, backfillId: number): Promise<GenerationSummary[]> {
  const { rows } = await db.query<GenerationSummaryRow>(
    `SELECT g.generation, g.reason, g.range_from, g.range_to, g.transform_hash, g.rows_total, g.created_at,
            COALESCE(c.chunks, 0) AS chunks, COALESCE(c.rows_done, 0) AS rows_done,
            c.first_commit, c.last_commit, c.p50, c.p95, COALESCE(c.workers, '{}') AS workers, c.checkpoint_hash,
            p.done AS partitions_done, p.total AS partitions
       FROM ${own('backfill_generations')} g
       LEFT JOIN LATERAL (
              SELECT count(*) AS chunks, sum(rows) AS rows_done, min(committed_at) AS first_commit, max(committed_at) AS last_commit,
                     percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
                     percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95,
                     array_agg(DISTINCT worker) FILTER (WHERE worker IS NOT NULL) AS workers,
                     md5(string_agg(concat_ws(':', lo, hi, rows, transform_hash), ',' ORDER BY partition_no, lo)) AS checkpoint_hash
                FROM ${own('checkpoints')} WHERE backfill_id = g.backfill_id AND generation = g.generation) c ON true
       LEFT JOIN LATERAL (
              SELECT count(*) FILTER (WHERE is_done) AS done, count(*) AS total
                FROM ${own('backfill_partitions')} WHERE backfill_id = g.backfill_id AND generation = g.generation) p ON true
      WHERE g.backfill_id = $1
      ORDER BY g.generation`,
    [backfillId],
  );
  return rows.map((r) => ({
    generation: r.generation,
    reason: r.reason,
    rangeFrom: r.range_from,
    rangeTo: r.range_to,
    transformHash: r.transform_hash,
    rowsPlanned: Number(r.rows_total),
    createdAt: r.created_at,
    chunks: Number(r.chunks),
    rowsDone: Number(r.rows_done),
    partitionsDone: Number(r.partitions_done),
    partitions: Number(r.partitions),
    firstCommitAt: r.first_commit,
    lastCommitAt: r.last_commit,
    chunkMsP50: r.p50 === null ? null : Math.round(Number(r.p50)),
    chunkMsP95: r.p95 === null ? null : Math.round(Number(r.p95)),
    workers: r.workers,
    checkpointHash: r.checkpoint_hash,
  }));
}

export interface LinkedBackfill {
  id: number;
  table: string;
  name: string;
  state: string;
  workflowId: string | null;
  lastError: string | null;
  /** The generations this rollout ran (created at or after it started). */
  generations: GenerationSummary[];
}

/** The backfills a rollout ran as children (found by table and name), each with the generations it started. */
export async function linkedBackfills(db: Queryable, refs: { table: string; name: string }[], since: Date): Promise<LinkedBackfill[]> {
  if (!refs.length) return [];
  const { rows } = await db.query<{
    id: string;
    table_name: string;
    name: string;
    state: string;
    workflow_id: string | null;
    last_error: string | null;
  }>(
    `SELECT b.id, b.table_name, b.name, b.state, b.workflow_id, b.last_error
       FROM ${own('backfills')} b JOIN jsonb_to_recordset($1::jsonb) AS r(tbl text, name text) ON r.tbl = b.table_name AND r.name = b.name
      ORDER BY b.id`,
    [JSON.stringify(refs.map((r) => ({ tbl: r.table, name: r.name })))],
  );
  const out: LinkedBackfill[] = [];
  for (const r of rows) {
    const generations = (await generationSummaries(db, Number(r.id))).filter((g) => g.createdAt >= since);
    out.push({
      id: Number(r.id),
      table: r.table_name,
      name: r.name,
      state: r.state,
      workflowId: r.workflow_id,
      lastError: r.last_error,
      generations,
    });
  }
  return out;
}

export interface AuditEventRow {
  workflowId: string;
  at: Date;
  kind: string;
  subject: string | null;
  event: string;
  detail: unknown;
  actor: string | null;
}

/**
 * The events of a workflow id and of every run under it: a scheduled
 * backfill's firings (`<prefix>-<timestamp>`), a backfill's rollout children
 * and replays (`<backfill id>:...`). `prefixes` are matched with starts_with.
 */
export async function eventsOfRuns(db: Queryable, workflowId: string, prefixes: string[]): Promise<AuditEventRow[]> {
  const { rows } = await db.query<AuditEventRow>(
    `SELECT workflow_id AS "workflowId", at, kind, subject, event, detail, actor FROM ${own('events')}
      WHERE workflow_id = $1 OR EXISTS (SELECT 1 FROM unnest($2::text[]) p WHERE starts_with(workflow_id, p))
      ORDER BY at, id`,
    [workflowId, prefixes],
  );
  return rows;
}

export interface BacklogRow {
  table: string;
  name: string;
  /** As last recorded: running, window_closed or failed (a paused run still reads running). */
  state: string;
  rowsPlanned: number;
  rowsDone: number;
}

/** Rows planned and done in the current generation of every backfill that is not finished. */
export async function openBackfillBacklog(db: Queryable): Promise<BacklogRow[]> {
  const { rows } = await db.query<{ table_name: string; name: string; state: string; planned: string; done: string }>(
    `SELECT b.table_name, b.name, b.state, COALESCE(sum(p.rows_planned), 0) AS planned, COALESCE(sum(p.rows_done), 0) AS done
       FROM ${own('backfills')} b
       JOIN ${own('backfill_partitions')} p ON p.backfill_id = b.id AND p.generation = b.generation
      WHERE b.state NOT IN ('completed', 'cancelled')
      GROUP BY b.table_name, b.name, b.state`,
  );
  return rows.map((r) => ({ table: r.table_name, name: r.name, state: r.state, rowsPlanned: Number(r.planned), rowsDone: Number(r.done) }));
}
