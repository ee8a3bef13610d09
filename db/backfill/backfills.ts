import type { Queryable } from '../pool';
import { prepared, preparedCount } from '../pool';
import { own } from '../identifiers';
import type { KeyedTable } from './key-sql';
import { cutSql, storedKey, storedParams } from './key-sql';
import type { PartitionBound } from './key-partitions';
import type { KeyColumn } from './key-values';
import { bindRange as bindKeyRange, decodeKey, canonicalKey } from './key-values';
import { oneRow } from '../rows';

/**
 * stagefill's bookkeeping of backfills: the run's row, its generations and
 * partitions (durable cursors), one checkpoint per committed chunk, and the
 * audit events. The key's own statements are in db/backfill/keys.ts (description,
 * ends), db/backfill/key-partitions.ts (bounds) and db/backfill/key-chunks.ts (cuts).
 */

/** `:lo` / `:hi` as typed parameters for a one-column key of `keyType` (the form rollout steps and tests use). */
export function bindRange(sql: string, keyType: string): string {
  return bindKeyRange(sql, [{ name: 'key', type: keyType }]);
}

export interface BackfillRow {
  id: number;
  table_name: string;
  name: string;
  key_column: string;
  key_type: string;
  generation: number;
  state: string;
  workflow_id: string | null;
  transform_hash: string;
  range_from: string | null;
  range_to: string | null;
  rows_total: string | null;
  last_error: string | null;
}

export async function findBackfill(db: Queryable, table: string, name: string): Promise<BackfillRow | undefined> {
  const { rows } = await db.query<BackfillRow>(`SELECT * FROM ${own('backfills')} WHERE table_name = $1 AND name = $2`, [table, name]);
  return rows[0];
}

export async function findBackfillByWorkflow(db: Queryable, workflowId: string): Promise<BackfillRow | undefined> {
  const { rows } = await db.query<BackfillRow>(`SELECT * FROM ${own('backfills')} WHERE workflow_id = $1`, [workflowId]);
  return rows[0];
}

export async function lockBackfillName(db: Queryable, table: string, name: string): Promise<void> {
  await db.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`stagefill.backfill:${table}:${name}`]);
}

export async function insertBackfill(
  db: Queryable,
  b: { table: string; name: string; key: string; keyType: string; workflowId: string; spec: unknown; transformHash: string },
): Promise<BackfillRow> {
  const { rows } = await db.query<BackfillRow>(
    `INSERT INTO ${own('backfills')} (table_name, name, key_column, key_type, generation, state, workflow_id, spec, transform_hash)
     VALUES ($1, $2, $3, $4, 0, 'planned', $5, $6, $7) RETURNING *`,
    [b.table, b.name, b.key, b.keyType, b.workflowId, JSON.stringify(b.spec), b.transformHash],
  );
  return oneRow({ rows }, `the new backfill ${b.name} on ${b.table}`);
}

export async function updateBackfillSpec(
  db: Queryable,
  id: number,
  b: { workflowId: string; spec: unknown; transformHash: string; keyType: string },
): Promise<void> {
  await db.query(
    `UPDATE ${own('backfills')} SET workflow_id = $2, spec = $3, transform_hash = $4, key_type = $5, last_error = NULL, updated_at = now() WHERE id = $1`,
    [id, b.workflowId, JSON.stringify(b.spec), b.transformHash, b.keyType],
  );
}

/** Sets a backfill's state; returns its table and name (undefined for no such backfill). */
export async function setBackfillState(
  db: Queryable,
  id: number,
  state: string,
  lastError?: string | null,
): Promise<{ table: string; name: string } | undefined> {
  const { rows } = await db.query<{ table: string; name: string }>(
    `UPDATE ${own('backfills')} SET state = $2, last_error = $3, updated_at = now() WHERE id = $1 RETURNING table_name AS "table", name`,
    [id, state, lastError ?? null],
  );
  return rows[0];
}

/** Opens a new generation with its partitions; the backfill row points at it. */
export async function insertGeneration(
  db: Queryable,
  g: {
    backfillId: number;
    generation: number;
    reason: string;
    from: string;
    to: string;
    transformHash: string;
    partitions: (PartitionBound & { fixedChunks?: [string, string][] })[];
    /** A partitioned table's leaves at planning time. */
    leaves?: string[] | null;
  },
): Promise<void> {
  const rowsTotal = g.partitions.reduce((s, p) => s + p.rows, 0);
  await db.query(
    `INSERT INTO ${own('backfill_generations')} (backfill_id, generation, reason, range_from, range_to, transform_hash, rows_total, leaves)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [g.backfillId, g.generation, g.reason, g.from, g.to, g.transformHash, rowsTotal, g.leaves ?? null],
  );
  await db.query(
    `INSERT INTO ${own('backfill_partitions')} (backfill_id, generation, partition_no, lo, hi, cursor, rows_planned, is_done, fixed_chunks, leaf)
     SELECT $1, $2, p.no, p.lo, p.hi, p.lo, p.rows, p.lo = p.hi, p.fixed, p.leaf
       FROM jsonb_to_recordset($3::jsonb) AS p(no int, lo text, hi text, rows bigint, fixed jsonb, leaf text)`,
    [
      g.backfillId,
      g.generation,
      JSON.stringify(
        g.partitions.map((p, no) => ({ no, lo: p.lo, hi: p.hi, rows: p.rows, fixed: p.fixedChunks ?? null, leaf: p.leaf ?? null })),
      ),
    ],
  );
  await db.query(
    `UPDATE ${own('backfills')} SET generation = $2, range_from = $3, range_to = $4, rows_total = $5, updated_at = now() WHERE id = $1`,
    [g.backfillId, g.generation, g.from, g.to, rowsTotal],
  );
}

export interface PartitionRow {
  partition_no: number;
  lo: string;
  hi: string;
  cursor: string;
  rows_planned: string;
  rows_done: string;
  chunks_done: number;
  is_done: boolean;
  fixed_chunks: [string, string][] | null;
  leaf: string | null;
}

export async function listPartitions(db: Queryable, backfillId: number, generation: number): Promise<PartitionRow[]> {
  const { rows } = await db.query<PartitionRow>(
    `SELECT partition_no, lo, hi, cursor, rows_planned, rows_done, chunks_done, is_done, fixed_chunks, leaf
       FROM ${own('backfill_partitions')} WHERE backfill_id = $1 AND generation = $2 ORDER BY partition_no`,
    [backfillId, generation],
  );
  return rows;
}

/**
 * Opens a lane's session on a partition: sets the session's lock and
 * statement timeouts (they bind every chunk statement after it, the transform
 * above all, whose row locks meet live traffic) and reads where the partition
 * stands. The lane then keeps the cursor itself; every checkpoint write checks
 * it (commitChunkCheckpoint), so a lane that lost a race to another worker
 * finds out at its next commit, rolls that chunk back and reads again here.
 */
export async function openLane(
  db: Queryable,
  p: {
    backfillId: number;
    generation: number;
    partitionNo: number;
    lockTimeoutMs: number;
    statementTimeoutMs: number;
    /** backend_flush_after for the session, kB; 0 leaves the server's. */
    flushAfterKb: number;
    table: string;
    /** A key of several columns: its lane plans row comparisons without sequential scans (below). */
    isCompositeKey?: boolean;
  },
): Promise<PartitionRow & { planned_leaves: string[] | null; leaves_now: string[] | null }> {
  // SET cannot take bind parameters; set_config(..., is_local => false) can. closeLane resets them.
  // PostgreSQL estimates a row comparison such as (tenant_id, id) >= ROW($1, $2) by its first
  // column alone, and cannot pair the >= and < of a chunk into one range: a chunk that spans two
  // tenants is estimated at a large share of the table and planned as a sequential scan of all
  // of it (seconds a chunk on millions of rows). A chunk is a key range by design, so on a
  // composite key the lane turns sequential scans off for its session: the key's index is used.
  // A transform reading another table without an index still scans it (the setting only adds cost).
  // A backfill writes each page once and moves on: backend_flush_after has the kernel write its pages back
  // as it goes, not all at once at its periodic write-back, which stalls every commit (core/backfill/throttle.ts).
  // A partitioned table's leaves now and at planning, so the lease sees an attach or detach.
  const { rows } = await db.query<PartitionRow & { planned_leaves: string[] | null; leaves_now: string[] | null }>(
    `SELECT set_config('lock_timeout', $4, false) AS lock_timeout, set_config('statement_timeout', $5, false) AS statement_timeout,
            set_config('enable_seqscan', CASE WHEN $7 THEN 'off' ELSE current_setting('enable_seqscan') END, false) AS enable_seqscan,
            set_config('backend_flush_after', CASE WHEN $8::int > 0 THEN $8::int || 'kB' ELSE current_setting('backend_flush_after') END, false) AS flush_after,
            p.partition_no, p.lo, p.hi, p.cursor, p.rows_planned, p.rows_done, p.chunks_done, p.is_done, p.fixed_chunks, p.leaf,
            g.leaves AS planned_leaves,
            CASE WHEN g.leaves IS NOT NULL THEN
              (SELECT array_agg(n.nspname || '.' || c.relname ORDER BY n.nspname || '.' || c.relname)
                 FROM pg_partition_tree(to_regclass($6)) t JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE t.isleaf) END AS leaves_now
       FROM ${own('backfill_partitions')} p
       JOIN ${own('backfill_generations')} g ON g.backfill_id = p.backfill_id AND g.generation = p.generation
      WHERE p.backfill_id = $1 AND p.generation = $2 AND p.partition_no = $3`,
    [
      p.backfillId,
      p.generation,
      p.partitionNo,
      `${p.lockTimeoutMs}ms`,
      `${p.statementTimeoutMs}ms`,
      p.table,
      p.isCompositeKey ?? false,
      p.flushAfterKb,
    ],
  );
  const row = rows[0];
  if (!row) throw new Error(`partition ${p.partitionNo} of backfill ${p.backfillId} generation ${p.generation} does not exist`);
  return row;
}

/**
 * Named statements a pooled connection may hold before it is retired: each
 * backfill prepares three or four, and a long-lived worker runs many.
 */
const MAX_PREPARED_PER_CONNECTION = 64;

/**
 * Gives the session's timeouts back before the connection returns to the
 * pool; false when the connection should be closed instead (it holds many
 * prepared statements of finished backfills).
 */
export async function closeLane(db: Queryable): Promise<boolean> {
  await db.query('RESET lock_timeout; RESET statement_timeout; RESET enable_seqscan; RESET backend_flush_after');
  return preparedCount(db) <= MAX_PREPARED_PER_CONNECTION;
}

/** The first column of the first row of an operator-written probe or check, or undefined. */
export async function queryScalar(db: Queryable, text: string): Promise<unknown> {
  const { rows } = await db.query<Record<string, unknown>>(text);
  const first = rows[0];
  return first ? Object.values(first)[0] : undefined;
}

/**
 * Advances the cursor and writes the checkpoint: the last statement of the
 * chunk's transaction, and the only one besides the transform. It writes
 * nothing unless the cursor is still where the chunk started (`lo`): the row
 * lock of the UPDATE makes two lanes racing over one partition take turns,
 * and the loser sees the moved cursor, writes nothing and must roll back. So
 * a chunk is applied once however many workers believe they own it.
 *
 * It also picks how the transaction commits. A chunk that leaves its partition
 * unfinished commits without waiting for the WAL flush (synchronous_commit off;
 * on two cores the wait was a fifth of the backfill's time): a database crash
 * can lose the last such commits, but each chunk with its checkpoint and
 * cursor, so the lost chunks are simply redone from the cursor that survived.
 * The chunk that finishes a partition commits as the database is configured
 * (durably, by default), and with it every earlier commit (the WAL is one
 * sequence), before the lease tells the workflow the partition is done.
 *
 * With `nextCut`, the same round trip cuts the lane's next chunk, so a chunk
 * costs four statements (BEGIN, transform, this, COMMIT) whatever the key.
 */
export async function commitChunkCheckpoint(
  db: Queryable,
  c: {
    backfillId: number;
    generation: number;
    partitionNo: number;
    lo: string;
    hi: string;
    isLast: boolean;
    rows: number;
    durationMs: number;
    transformHash: string;
    worker: string;
  },
  nextCut?: KeyedTable & { partitionHi: string; size: number },
): Promise<{ isWritten: boolean; nextCut: string | null }> {
  const params: unknown[] = [
    c.backfillId,
    c.generation,
    c.partitionNo,
    c.lo,
    c.hi,
    c.isLast,
    c.rows,
    Math.round(c.durationMs),
    c.transformHash,
    c.worker,
  ];
  let cut = 'NULL::text';
  if (nextCut) {
    const n = nextCut.cols.length;
    const at = (values: string[]) => values.map((v) => `$${params.push(v)}`);
    // one column: the cursor's own parameter ($5) starts the cut, as before composite keys
    const from = n === 1 ? ['$5'] : at(decodeKey(c.hi, n));
    const hi = at(decodeKey(nextCut.partitionHi, n));
    cut = cutSql(nextCut, from, hi, `$${params.push(nextCut.size)}`);
  }
  const text = `WITH p AS (
       UPDATE ${own('backfill_partitions')}
          SET cursor = $5, is_done = $6, rows_done = rows_done + $7, chunks_done = chunks_done + 1
        WHERE backfill_id = $1 AND generation = $2 AND partition_no = $3 AND cursor = $4
       RETURNING 1),
     c AS (
       INSERT INTO ${own('checkpoints')} (backfill_id, generation, lo, hi, partition_no, rows, duration_ms, transform_hash, worker)
       SELECT $1, $2, $4, $5, $3, $7, $8, $9, $10 FROM p
       RETURNING 1)
     SELECT (SELECT count(*) FROM c)::int AS written, ${cut} AS next_cut,
            set_config('synchronous_commit', CASE WHEN $6 THEN current_setting('synchronous_commit') ELSE 'off' END, true) AS commit_mode`;
  const { rows } = await db.query<{ written: number; next_cut: string | null }>(prepared(db, text, params));
  const { written, next_cut: next } = oneRow({ rows }, 'the checkpoint statement');
  return { isWritten: written === 1, nextCut: next === null || !nextCut ? null : canonicalKey(next, nextCut.cols.length) };
}

export interface BackfillCounters {
  rowsDone: number;
  chunksDone: number;
  rowsPlanned: number;
  partitionsDone: number;
  partitions: number;
}

export async function backfillCounters(db: Queryable, backfillId: number, generation: number): Promise<BackfillCounters> {
  const { rows } = await db.query<{ rows_done: string; chunks_done: string; rows_planned: string; done: string; total: string }>(
    `SELECT COALESCE(sum(rows_done), 0) AS rows_done, COALESCE(sum(chunks_done), 0) AS chunks_done,
            COALESCE(sum(rows_planned), 0) AS rows_planned, count(*) FILTER (WHERE is_done) AS done, count(*) AS total
       FROM ${own('backfill_partitions')} WHERE backfill_id = $1 AND generation = $2`,
    [backfillId, generation],
  );
  const r = oneRow({ rows }, `the counters of backfill ${backfillId} generation ${generation}`);
  return {
    rowsDone: Number(r.rows_done),
    chunksDone: Number(r.chunks_done),
    rowsPlanned: Number(r.rows_planned),
    partitionsDone: Number(r.done),
    partitions: Number(r.total),
  };
}

export interface CheckpointRow {
  lo: string;
  hi: string;
  partition_no: number;
  rows: string;
}

export async function checkpointsInRange(
  db: Queryable,
  backfillId: number,
  generation: number,
  cols: readonly KeyColumn[],
  from: string,
  to: string,
): Promise<CheckpointRow[]> {
  const n = cols.length;
  const { rows } = await db.query<CheckpointRow>(
    `SELECT lo, hi, partition_no, rows FROM ${own('checkpoints')}
      WHERE backfill_id = $1 AND generation = $2 AND ${storedKey(cols, 'hi')} > ${storedParams(cols, 3)} AND ${storedKey(cols, 'lo')} < ${storedParams(cols, 3 + n)}
      ORDER BY partition_no, ${storedKey(cols, 'lo')}`,
    [backfillId, generation, ...decodeKey(from, n), ...decodeKey(to, n)],
  );
  return rows;
}

export async function recordEvent(
  db: Queryable,
  e: { workflowId: string; kind: string; subject?: string | null; event: string; detail?: unknown; actor?: string | null },
): Promise<void> {
  await db.query(`INSERT INTO ${own('events')} (workflow_id, kind, subject, event, detail, actor) VALUES ($1, $2, $3, $4, $5, $6)`, [
    e.workflowId,
    e.kind,
    e.subject ?? null,
    e.event,
    e.detail === undefined ? null : JSON.stringify(e.detail),
    e.actor ?? null,
  ]);
}

export async function listEvents(
  db: Queryable,
  workflowId: string,
): Promise<{ at: Date; kind: string; subject: string | null; event: string; detail: unknown; actor: string | null }[]> {
  const { rows } = await db.query<{ at: Date; kind: string; subject: string | null; event: string; detail: unknown; actor: string | null }>(
    `SELECT at, kind, subject, event, detail, actor FROM ${own('events')} WHERE workflow_id = $1 ORDER BY id`,
    [workflowId],
  );
  return rows;
}

/** Backfills of that name (on any table), with the spec they last ran with: what `stagefill replay` starts from. */
export async function findBackfillsByName(db: Queryable, name: string): Promise<(BackfillRow & { spec: unknown })[]> {
  const { rows } = await db.query<BackfillRow & { spec: unknown }>(
    `SELECT * FROM ${own('backfills')} WHERE name = $1 ORDER BY table_name`,
    [name],
  );
  return rows;
}
