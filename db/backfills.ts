import { Queryable, prepared, preparedCount } from './pool';
import { own, parseTable, qualified, ident } from './identifiers';

/** Key column types a backfill can cut ranges on, and how to step just past a maximum. */
const KEY_STEP: Record<string, string> = {
  smallint: '1',
  integer: '1',
  bigint: '1',
  date: '1',
  'timestamp without time zone': "interval '1 microsecond'",
  'timestamp with time zone': "interval '1 microsecond'",
};
export const KEY_TYPES = Object.keys(KEY_STEP);

export interface KeyInfo {
  tableExists: boolean;
  keyType?: string;
  hasIndex: boolean;
  /** A unique, non-partial index on exactly the key: a key range [lo, lo + n) then holds at most n rows. */
  isUnique: boolean;
}

export async function describeKey(db: Queryable, table: string, key: string): Promise<KeyInfo> {
  const t = parseTable(table);
  const { rows } = await db.query<{ key_type: string | null; has_index: boolean | null; is_unique: boolean | null; table_oid: number | null }>(
    `SELECT c.oid AS table_oid,
            format_type(a.atttypid, NULL) AS key_type,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum) AS has_index,
            EXISTS (SELECT 1 FROM pg_index i
                     WHERE i.indrelid = c.oid AND i.indisunique AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum AND i.indpred IS NULL) AS is_unique
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $3 AND NOT a.attisdropped AND a.attnum > 0
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
    [t.schema, t.name, key],
  );
  if (!rows.length) return { tableExists: false, hasIndex: false, isUnique: false };
  return { tableExists: true, keyType: rows[0].key_type ?? undefined, hasIndex: Boolean(rows[0].has_index), isUnique: Boolean(rows[0].is_unique) };
}

/** A value as Postgres prints it for the key type, so cursors compare as text. */
export async function normalizeKey(db: Queryable, keyType: string, value: string): Promise<string> {
  const { rows } = await db.query<{ v: string }>(`SELECT ($1::${keyType})::text AS v`, [value]);
  return rows[0].v;
}

/** [min, max + step) of the key, or null for an empty table. */
export async function keyExtent(db: Queryable, table: string, key: string, keyType: string): Promise<{ from: string; to: string } | null> {
  const k = ident(key);
  const { rows } = await db.query<{ lo: string | null; hi: string | null }>(
    `SELECT min(${k})::text AS lo, (max(${k}) + ${KEY_STEP[keyType]})::${keyType}::text AS hi FROM ${qualified(table)}`,
  );
  return rows[0].lo === null || rows[0].hi === null ? null : { from: rows[0].lo, to: rows[0].hi };
}

export interface PartitionBound {
  lo: string;
  hi: string;
  rows: number;
}

/** Above this many rows (the planner's estimate) partitions are cut from a sample rather than a scan of every key. */
const SAMPLE_ABOVE_ROWS = 500_000;
/**
 * About this many sampled keys. The sample takes whole blocks, so a
 * partition's share is off by about 1/sqrt(its sampled blocks): 150k keys keep
 * 8 partitions of a 5M-row table within ~5% of each other, and the lane that
 * finishes first waits for the other by about that much.
 */
const SAMPLE_TARGET_ROWS = 150_000;

/**
 * Cuts [from, to) into `parts` ranges of about equal row counts, from the data
 * itself (ntile over the key) so sparse or skewed keys still split evenly.
 * On a large table the keys come from a block sample (TABLESAMPLE SYSTEM):
 * ranking every key of 5M rows took ~2 s, a tenth of the whole backfill, and the
 * row counts then are estimates (they feed progress and ETA, not correctness).
 */
export async function partitionBounds(
  db: Queryable,
  table: string,
  key: string,
  keyType: string,
  from: string,
  to: string,
  parts: number,
): Promise<PartitionBound[]> {
  const k = ident(key);
  const ranked = (source: string, params: unknown[]) =>
    db.query<{ lo: string; rows: string }>(
      `SELECT min(k)::text AS lo, count(*) AS rows
         FROM (SELECT ${k} AS k, ntile($3) OVER (ORDER BY ${k}) AS b
                 FROM ${source}
                WHERE ${k} >= $1::${keyType} AND ${k} < $2::${keyType}) s
        GROUP BY b ORDER BY b`,
      params,
    );
  let rows: { lo: string; rows: number }[] | undefined;
  const estimate = await estimatedRows(db, table);
  if (estimate >= SAMPLE_ABOVE_ROWS) {
    const percent = Math.min(100, (100 * SAMPLE_TARGET_ROWS) / estimate);
    const sample = await ranked(`${qualified(table)} TABLESAMPLE SYSTEM ($4)`, [from, to, parts, percent]);
    const sampled = sample.rows.reduce((n, r) => n + Number(r.rows), 0);
    // a narrow range of a big table leaves too few sampled keys to cut from: rank its keys instead
    if (sampled >= parts * 100) rows = sample.rows.map((r) => ({ lo: r.lo, rows: Math.round((Number(r.rows) * 100) / percent) }));
  }
  rows ??= (await ranked(qualified(table), [from, to, parts])).rows.map((r) => ({ lo: r.lo, rows: Number(r.rows) }));
  const bounds: PartitionBound[] = [];
  for (const [i, r] of rows.entries()) {
    const lo = i === 0 ? from : r.lo;
    const last = bounds[bounds.length - 1];
    // equal keys can straddle two buckets; keep boundaries strictly increasing
    if (last && last.lo === lo) last.rows += r.rows;
    else bounds.push({ lo, hi: to, rows: r.rows });
  }
  for (let i = 0; i + 1 < bounds.length; i++) bounds[i].hi = bounds[i + 1].lo;
  return bounds.length ? bounds : [{ lo: from, hi: to, rows: 0 }];
}

/** The planner's row estimate (pg_class.reltuples); -1 when the table was never analyzed. */
export async function estimatedRows(db: Queryable, table: string): Promise<number> {
  const { rows } = await db.query<{ n: number | null }>('SELECT reltuples::float8 AS n FROM pg_class WHERE oid = to_regclass($1)', [qualified(table)]);
  return rows[0]?.n ?? -1;
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
  return rows[0];
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

export async function setBackfillState(db: Queryable, id: number, state: string, lastError?: string | null): Promise<void> {
  await db.query(`UPDATE ${own('backfills')} SET state = $2, last_error = $3, updated_at = now() WHERE id = $1`, [id, state, lastError ?? null]);
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
  },
): Promise<void> {
  const rowsTotal = g.partitions.reduce((s, p) => s + p.rows, 0);
  await db.query(
    `INSERT INTO ${own('backfill_generations')} (backfill_id, generation, reason, range_from, range_to, transform_hash, rows_total)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [g.backfillId, g.generation, g.reason, g.from, g.to, g.transformHash, rowsTotal],
  );
  await db.query(
    `INSERT INTO ${own('backfill_partitions')} (backfill_id, generation, partition_no, lo, hi, cursor, rows_planned, is_done, fixed_chunks)
     SELECT $1, $2, p.no, p.lo, p.hi, p.lo, p.rows, p.lo = p.hi, p.fixed
       FROM jsonb_to_recordset($3::jsonb) AS p(no int, lo text, hi text, rows bigint, fixed jsonb)`,
    [
      g.backfillId,
      g.generation,
      JSON.stringify(g.partitions.map((p, no) => ({ no, lo: p.lo, hi: p.hi, rows: p.rows, fixed: p.fixedChunks ?? null }))),
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
}

export async function listPartitions(db: Queryable, backfillId: number, generation: number): Promise<PartitionRow[]> {
  const { rows } = await db.query<PartitionRow>(
    `SELECT partition_no, lo, hi, cursor, rows_planned, rows_done, chunks_done, is_done, fixed_chunks
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
  p: { backfillId: number; generation: number; partitionNo: number; lockTimeoutMs: number; statementTimeoutMs: number },
): Promise<PartitionRow> {
  // SET cannot take bind parameters; set_config(..., is_local => false) can. closeLane resets both.
  const { rows } = await db.query<PartitionRow>(
    `SELECT set_config('lock_timeout', $4, false) AS lock_timeout, set_config('statement_timeout', $5, false) AS statement_timeout,
            partition_no, lo, hi, cursor, rows_planned, rows_done, chunks_done, is_done, fixed_chunks
       FROM ${own('backfill_partitions')} WHERE backfill_id = $1 AND generation = $2 AND partition_no = $3`,
    [p.backfillId, p.generation, p.partitionNo, `${p.lockTimeoutMs}ms`, `${p.statementTimeoutMs}ms`],
  );
  if (!rows.length) throw new Error(`partition ${p.partitionNo} of backfill ${p.backfillId} generation ${p.generation} does not exist`);
  return rows[0];
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
  await db.query('RESET lock_timeout; RESET statement_timeout');
  return preparedCount(db) <= MAX_PREPARED_PER_CONNECTION;
}

/** The key `size` rows on from `from` (below `partitionHi`), or null when fewer rows are left. */
function cutSql(t: { table: string; key: string; keyType: string }, from: string, hi: string, size: string): string {
  const k = ident(t.key);
  // aliased: an output column named like the key would make ORDER BY sort the text
  return `(SELECT ${k}::text AS cut FROM ${qualified(t.table)}
            WHERE ${k} >= ${from}::${t.keyType} AND ${k} < ${hi}::${t.keyType} ORDER BY ${k} OFFSET ${size} LIMIT 1)`;
}

/** A lane's first cut; later ones come back with each checkpoint write. */
export async function cutChunk(db: Queryable, t: { table: string; key: string; keyType: string }, from: string, partitionHi: string, size: number): Promise<string | null> {
  const { rows } = await db.query<{ cut: string | null }>(prepared(db, `SELECT ${cutSql(t, '$1', '$2', '$3')} AS cut`, [from, partitionHi, size]));
  return rows[0].cut;
}

/**
 * Where the chunk starting at `lo` ends, from its cut (the key `size`
 * rows on, or null when fewer are left): always past `lo` (many equal keys)
 * and never past the partition's end.
 */
export async function chunkEndPastLo(
  db: Queryable,
  t: { table: string; key: string; keyType: string },
  lo: string,
  partitionHi: string,
  cut: string | null,
): Promise<string> {
  // fewer than `size` rows left: the chunk runs to the partition's end
  const hi = cut ?? partitionHi;
  if (hi !== lo) return hi;
  // more than `size` rows share the key `lo`: the chunk takes all of them
  const k = ident(t.key);
  const next = await db.query<{ hi: string | null }>(
    `SELECT min(${k})::text AS hi FROM ${qualified(t.table)} WHERE ${k} > $1::${t.keyType} AND ${k} < $2::${t.keyType}`,
    [lo, partitionHi],
  );
  return next.rows[0].hi ?? partitionHi;
}

/** `:lo` / `:hi` become typed bind parameters $1 / $2; no value is ever spliced into SQL. */
export function bindRange(sql: string, keyType: string): string {
  return sql.replace(/(?<!:):lo\b/g, `$1::${keyType}`).replace(/(?<!:):hi\b/g, `$2::${keyType}`);
}

/** A chunk's transform or check over [lo, hi), prepared once per connection. */
export async function runRangeStatement(db: Queryable, sql: string, keyType: string, lo: string, hi: string): Promise<{ rowCount: number; value?: unknown }> {
  const r = await db.query(prepared(db, bindRange(sql, keyType), [lo, hi]));
  const first = r.rows?.[0] as Record<string, unknown> | undefined;
  return { rowCount: r.rowCount ?? 0, value: first ? Object.values(first)[0] : undefined };
}

/** The first column of the first row of an operator-written probe or check, or undefined. */
export async function queryScalar(db: Queryable, text: string): Promise<unknown> {
  const { rows } = await db.query(text);
  const first = rows[0] as Record<string, unknown> | undefined;
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
  nextCut?: { table: string; key: string; keyType: string; partitionHi: string; size: number },
): Promise<{ isWritten: boolean; nextCut: string | null }> {
  const params: unknown[] = [c.backfillId, c.generation, c.partitionNo, c.lo, c.hi, c.isLast, c.rows, Math.round(c.durationMs), c.transformHash, c.worker];
  let cut = 'NULL::text';
  if (nextCut) {
    params.push(nextCut.partitionHi, nextCut.size);
    cut = cutSql(nextCut, '$5', '$11', '$12');
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
  return { isWritten: rows[0].written === 1, nextCut: rows[0].next_cut };
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
  const r = rows[0];
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
  keyType: string,
  from: string,
  to: string,
): Promise<CheckpointRow[]> {
  const { rows } = await db.query<CheckpointRow>(
    `SELECT lo, hi, partition_no, rows FROM ${own('checkpoints')}
      WHERE backfill_id = $1 AND generation = $2 AND hi::${keyType} > $3::${keyType} AND lo::${keyType} < $4::${keyType}
      ORDER BY lo::${keyType}`,
    [backfillId, generation, from, to],
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

export async function listEvents(db: Queryable, workflowId: string): Promise<{ at: Date; kind: string; subject: string | null; event: string; detail: unknown; actor: string | null }[]> {
  const { rows } = await db.query(`SELECT at, kind, subject, event, detail, actor FROM ${own('events')} WHERE workflow_id = $1 ORDER BY id`, [workflowId]);
  return rows;
}

/** Backfills of that name (on any table), with the spec they last ran with: what `stagefill replay` starts from. */
export async function findBackfillsByName(db: Queryable, name: string): Promise<(BackfillRow & { spec: unknown })[]> {
  const { rows } = await db.query<BackfillRow & { spec: unknown }>(`SELECT * FROM ${own('backfills')} WHERE name = $1 ORDER BY table_name`, [name]);
  return rows;
}
