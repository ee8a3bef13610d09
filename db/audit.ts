import { Queryable } from './pool';
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
}

/** Every generation of one backfill with its checkpoints summed up, oldest first. */
export async function generationSummaries(db: Queryable, backfillId: number): Promise<GenerationSummary[]> {
  const { rows } = await db.query(
    `SELECT g.generation, g.reason, g.range_from, g.range_to, g.transform_hash, g.rows_total, g.created_at,
            COALESCE(c.chunks, 0) AS chunks, COALESCE(c.rows_done, 0) AS rows_done,
            c.first_commit, c.last_commit, c.p50, c.p95, COALESCE(c.workers, '{}') AS workers,
            p.done AS partitions_done, p.total AS partitions
       FROM ${own('backfill_generations')} g
       LEFT JOIN LATERAL (
              SELECT count(*) AS chunks, sum(rows) AS rows_done, min(committed_at) AS first_commit, max(committed_at) AS last_commit,
                     percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
                     percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95,
                     array_agg(DISTINCT worker) FILTER (WHERE worker IS NOT NULL) AS workers
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
  }));
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
  const { rows } = await db.query(
    `SELECT b.table_name, b.name, b.state, COALESCE(sum(p.rows_planned), 0) AS planned, COALESCE(sum(p.rows_done), 0) AS done
       FROM ${own('backfills')} b
       JOIN ${own('backfill_partitions')} p ON p.backfill_id = b.id AND p.generation = b.generation
      WHERE b.state NOT IN ('completed', 'cancelled')
      GROUP BY b.table_name, b.name, b.state`,
  );
  return rows.map((r) => ({ table: r.table_name, name: r.name, state: r.state, rowsPlanned: Number(r.planned), rowsDone: Number(r.done) }));
}
