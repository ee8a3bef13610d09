import type { Pool } from 'pg';
import type { Client } from '@temporalio/client';
import type { BackfillProgress } from '../../workflows/definitions';
import { progressQuery } from '../../workflows/definitions';
import { parseBackfillSpec } from '../../steps/spec';
import { unique, spawnWorker, exited, waitFor, sleep, connectionFor } from './harness';

export { connectionFor };
import { backfillWorkflow } from '../../workflows/backfill/workflow';
import { backfillWorkflowId } from '../../core/common/ids';
import type { BackfillSpec } from '../../core/common/fields';

/**
 * What the backfill proofs assert about the database: every row changed
 * exactly once, and the checkpoints a gapless, non-overlapping chain over
 * each partition. Shared by the backfill-*.test.ts files.
 */

/** A counter-table backfill: every row's `n` goes up by one, so a chunk applied twice shows as n = 2. */
export function counterSpec(table: string, extra: Record<string, unknown> = {}): BackfillSpec {
  return parseBackfillSpec({
    kind: 'backfill',
    name: unique('bf'),
    table,
    key: 'id',
    chunkSize: 1000,
    parallelism: 2,
    transform: `UPDATE ${table} SET n = n + 1 WHERE id >= :lo AND id < :hi`,
    ...extra,
  });
}

/** A one-row table `lag int` at `lag`, for a backfill's health check to read (`SELECT lag FROM` it); returns its name. */
export async function makeHealthTable(pool: Pool, lag: number): Promise<string> {
  const health = `public.${unique('health')}`;
  await pool.query(`CREATE TABLE ${health} (lag int NOT NULL)`);
  await pool.query(`INSERT INTO ${health} VALUES ($1)`, [lag]);
  return health;
}

/** `{ n: rows }` over the table, e.g. `{ '1': 20000 }` when every row was changed once. */
export async function distribution(pool: Pool, table: string): Promise<Record<string, number>> {
  const { rows } = await pool.query(`SELECT n, count(*)::int AS c FROM ${table} GROUP BY n ORDER BY n`);
  return Object.fromEntries(rows.map((r) => [String(r.n), r.c]));
}

export interface CheckpointRecord {
  partition_no: number;
  lo: string;
  hi: string;
  rows: number;
  worker: string | null;
  committed_at: Date;
  duration_ms: number;
}

export interface ChainReport {
  backfillId: number;
  generation: number;
  partitions: number;
  chunks: number;
  rows: number;
  workers: string[];
  checkpoints: CheckpointRecord[];
  /** Every way the checkpoints fail to tile the partitions; empty when they are one exact chain each. */
  problems: string[];
}

/**
 * Reads the current generation's partitions and checkpoints and walks each
 * partition's chain: first lo = partition lo, each hi = next lo, last hi =
 * partition hi, as many checkpoints as the partition counted chunks. With
 * `complete: false` (a cancelled or paused run) the chain must be a gapless
 * prefix that ends at the partition's cursor.
 */
export async function checkpointChain(pool: Pool, table: string, name: string, opts: { complete?: boolean } = {}): Promise<ChainReport> {
  const complete = opts.complete ?? true;
  const b = await pool.query<{ id: string; generation: number }>(
    'SELECT id, generation FROM stagefill.backfills WHERE table_name = $1 AND name = $2',
    [table, name],
  );
  if (!b.rows.length) throw new Error(`no backfill ${name} on ${table}`);
  const { id, generation } = b.rows[0]!;
  const parts = await pool.query<{
    partition_no: number;
    lo: string;
    hi: string;
    cursor: string;
    is_done: boolean;
    chunks_done: number;
    rows_done: string;
  }>(
    `SELECT partition_no, lo, hi, cursor, is_done, chunks_done, rows_done FROM stagefill.backfill_partitions
      WHERE backfill_id = $1 AND generation = $2 ORDER BY partition_no`,
    [id, generation],
  );
  const cps = await pool.query<CheckpointRecord & { rows: string }>(
    `SELECT partition_no, lo, hi, rows, worker, committed_at, duration_ms FROM stagefill.checkpoints
      WHERE backfill_id = $1 AND generation = $2 ORDER BY partition_no, committed_at`, // one lane at a time per partition: commit order is key order, for any key
    [id, generation],
  );
  const checkpoints = cps.rows.map((c) => ({ ...c, rows: Number(c.rows) }));
  const problems: string[] = [];
  for (const p of parts.rows) {
    const chain = checkpoints.filter((c) => c.partition_no === p.partition_no);
    const where = `partition ${p.partition_no} [${p.lo}, ${p.hi})`;
    if (complete && !p.is_done) problems.push(`${where} is not done`);
    if (chain.length !== p.chunks_done) problems.push(`${where} counted ${p.chunks_done} chunks but has ${chain.length} checkpoints`);
    if (p.lo === p.hi) continue;
    if (!chain.length) {
      if (complete) problems.push(`${where} has no checkpoint`);
      else if (p.cursor !== p.lo) problems.push(`${where} has no checkpoint but its cursor moved to ${p.cursor}`);
      continue;
    }
    if (chain[0]!.lo !== p.lo) problems.push(`${where} starts at ${chain[0]!.lo}`);
    for (let i = 0; i + 1 < chain.length; i++) {
      if (chain[i]!.hi !== chain[i + 1]!.lo)
        problems.push(`${where}: [${chain[i]!.lo}, ${chain[i]!.hi}) is followed by [${chain[i + 1]!.lo}, ${chain[i + 1]!.hi})`);
    }
    const end = chain[chain.length - 1]!.hi;
    if (complete && end !== p.hi) problems.push(`${where} ends at ${end}`);
    // a stopped run: the durable cursor is exactly where the last committed chunk ended
    if (!complete && end !== p.cursor) problems.push(`${where}: last checkpoint ends at ${end} but the cursor is ${p.cursor}`);
  }
  const orphans = checkpoints.filter((c) => !parts.rows.some((p) => p.partition_no === c.partition_no));
  if (orphans.length) problems.push(`${orphans.length} checkpoints belong to no partition`);
  return {
    backfillId: Number(id),
    generation,
    partitions: parts.rows.length,
    chunks: checkpoints.length,
    rows: checkpoints.reduce((s, c) => s + c.rows, 0),
    workers: [...new Set(checkpoints.map((c) => c.worker ?? '?'))].sort(),
    checkpoints,
    problems,
  };
}

export async function progressOf(client: Client, workflowId: string): Promise<BackfillProgress> {
  return (await client.workflow.getHandle(workflowId).query(progressQuery)) as BackfillProgress;
}

/**
 * Rows changed (n = 1) outside every checkpointed range, and rows inside one
 * still unchanged: both 0 when the data and the checkpoints agree exactly.
 */
export async function rowsAgainstCheckpoints(
  pool: Pool,
  table: string,
  backfillId: number,
  generation: number,
): Promise<{ changedOutside: number; unchangedInside: number }> {
  const { rows } = await pool.query(
    `WITH c AS (SELECT lo::bigint AS lo, hi::bigint AS hi FROM stagefill.checkpoints WHERE backfill_id = $1 AND generation = $2)
     SELECT count(*) FILTER (WHERE t.n <> 0 AND NOT EXISTS (SELECT 1 FROM c WHERE t.id >= c.lo AND t.id < c.hi))::int AS changed_outside,
            count(*) FILTER (WHERE t.n = 0 AND EXISTS (SELECT 1 FROM c WHERE t.id >= c.lo AND t.id < c.hi))::int AS unchanged_inside
       FROM ${table} t`,
    [backfillId, generation],
  );
  return { changedOutside: rows[0].changed_outside, unchangedInside: rows[0].unchanged_inside };
}

/** Rows the current generation's partitions counted done. */
export async function rowsDone(pool: Pool, table: string, name: string): Promise<number> {
  const { rows } = await pool.query(
    `SELECT COALESCE(sum(p.rows_done), 0)::int AS n
       FROM stagefill.backfills b JOIN stagefill.backfill_partitions p ON p.backfill_id = b.id AND p.generation = b.generation
      WHERE b.table_name = $1 AND b.name = $2`,
    [table, name],
  );
  return rows[0].n;
}

/**
 * Runs a backfill on a real worker process and SIGKILLs it up to `kills`
 * times, each kill after the worker committed something of its own and a
 * random pause of up to `spreadMs`; a new worker starts after each kill.
 * Returns the workflow's result and the rows done at each kill.
 */
export async function runWithKills(
  stack: { pool: Pool; client: Client },
  spec: BackfillSpec,
  opts: { total: number; kills: number; spreadMs: number; progressTimeoutMs?: number },
): Promise<{ result: BackfillResultShape; kills: { afterMs: number; rowsDoneAtKill: number }[] }> {
  const started = Date.now();
  const taskQueue = unique('q');
  let worker = spawnWorker(taskQueue);
  const handle = await stack.client.workflow.start(backfillWorkflow, {
    taskQueue,
    workflowId: backfillWorkflowId(spec.table, spec.name),
    args: [{ spec }],
  });
  const kills: { afterMs: number; rowsDoneAtKill: number }[] = [];
  try {
    for (let k = 0; k < opts.kills; k++) {
      const before = await rowsDone(stack.pool, spec.table, spec.name);
      // each kill lands while this worker is working: after it committed something of its own
      await waitFor(
        'progress after a restart',
        async () => (await rowsDone(stack.pool, spec.table, spec.name)) > before,
        opts.progressTimeoutMs ?? 120_000,
        100,
      );
      await sleep(200 + Math.floor(Math.random() * opts.spreadMs)); // spread over the run, not bunched at its start
      const at = await rowsDone(stack.pool, spec.table, spec.name);
      if (at >= opts.total) break;
      worker.kill('SIGKILL');
      await exited(worker);
      kills.push({ afterMs: Date.now() - started, rowsDoneAtKill: at });
      worker = spawnWorker(taskQueue);
    }
    return { result: (await handle.result()) as BackfillResultShape, kills };
  } finally {
    worker.kill('SIGKILL');
    await exited(worker);
  }
}

export interface BackfillResultShape {
  state: string;
  rowsProcessed: number;
  chunksDone: number;
}
