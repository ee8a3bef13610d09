import fs from 'node:fs';
import { itemAt } from '../core/common/checked';
import os from 'node:os';
import path from 'node:path';
import type { Pool, PoolClient } from 'pg';
import { startEmbeddedPostgres } from '../devstack';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import * as bf from '../db/backfill/backfills';
import { enterLane } from '../activities/backfill/lane';
import { applyChunk } from '../activities/backfill/chunk';
import type { LeaseInput } from '../activities/backfill/types';
import * as sql from './chunk-cost-sql';

/**
 * What one chunk costs the database beyond its transform, in figures that do
 * not depend on the machine's load: the statements a chunk's transaction runs
 * (pg_stat_statements, internal ones included), the client's round trips, and
 * per statement the buffers it touched and the WAL it wrote. The bare chunk
 * loop of the benchmark (bench/contenders.ts) against stagefill's own lane
 * (activities/backfill/lane.ts and chunk.ts, called directly: no Temporal),
 * on an integer key (chunks cut by arithmetic) and on a composite
 * (tenant_id, aid) key (chunks cut from the index, in the checkpoint's
 * statement), each over the same rows after VACUUM and CHECKPOINT.
 *
 *     npm run build && node dist/bench/chunk-cost.js [rows] [chunks]
 *
 * Starts its own PostgreSQL with pg_stat_statements (the benchmark's settings,
 * fsync off: WAL bytes do not depend on it) and removes it afterwards.
 */

const SIZE = 5000;

interface Figures {
  label: string;
  chunks: number;
  roundTrips: number;
  walBytes: number;
  /** This process's CPU time (user + system) over the chunks, microseconds: the client's own work, whatever the load. */
  clientCpuUs: number;
  statements: sql.StatementCost[];
}

/** Counts the client's queries: one round trip each (pg sends one statement and waits for its result). */
function counted(client: PoolClient): { trips(): number } {
  let n = 0;
  const query = client.query.bind(client) as (...a: unknown[]) => unknown;
  (client as unknown as { query: (...a: unknown[]) => unknown }).query = (...a: unknown[]) => {
    n++;
    return query(...a);
  };
  return { trips: () => n };
}

async function measured(pool: Pool, label: string, run: () => Promise<{ chunks: number; trips: number }>): Promise<Figures> {
  const before = await sql.levelled(pool);
  const cpu = process.cpuUsage();
  const { chunks, trips } = await run();
  const used = process.cpuUsage(cpu);
  return {
    label,
    chunks,
    roundTrips: trips,
    walBytes: await sql.walSince(pool, before),
    clientCpuUs: used.user + used.system,
    statements: await sql.statementCosts(pool),
  };
}

async function bareChunks(pool: Pool, chunks: number, tag: number): Promise<Figures> {
  const db = await pool.connect();
  try {
    const c = counted(db);
    return await measured(pool, 'bare chunks (integer key)', async () => {
      const from = c.trips();
      for (let i = 0; i < chunks; i++) await sql.bareChunk(db, tag, 1 + i * SIZE, 1 + (i + 1) * SIZE);
      return { chunks, trips: c.trips() - from };
    });
  } finally {
    db.release();
  }
}

async function stagefillLane(pool: Pool, t: sql.CostTable, chunks: number, tag: number): Promise<Figures> {
  const workflowId = `chunk-cost-${t.name}-${tag}`;
  const b = await bf.insertBackfill(pool, {
    table: t.table,
    name: workflowId,
    key: t.key.join(','),
    keyType: t.keyType,
    workflowId,
    spec: {},
    transformHash: 'h',
  });
  await bf.insertGeneration(pool, {
    backfillId: b.id,
    generation: 1,
    reason: 'start',
    from: t.lo,
    to: t.hi,
    transformHash: 'h',
    partitions: [{ lo: t.lo, hi: t.hi, rows: t.rows }],
  });
  const input: LeaseInput = {
    backfillId: b.id,
    generation: 1,
    partitionNo: 0,
    table: t.table,
    key: t.key.length === 1 ? itemAt(t.key, 0, 'key column') : t.key,
    keyType: t.keyType,
    isKeyUnique: true,
    transform: sql.transformOf(t, tag),
    transformHash: 'h',
    chunkSize: SIZE,
    minChunkSize: 100,
    maxChunkSize: 100_000,
    lockTimeoutMs: 10_000,
    statementTimeoutMs: 600_000,
    leaseMs: 3_600_000,
  };
  const lane = await enterLane(pool, input, new AbortController().signal);
  if (!lane) throw new Error('no lane');
  try {
    const c = counted(lane.session.client);
    // the lane's first chunk cuts its end in a statement of its own; later cuts come with each checkpoint
    await applyChunk(lane, input, SIZE);
    return await measured(pool, `stagefill lane (${t.title})`, async () => {
      const from = c.trips();
      let n = 0;
      for (; n < chunks; n++) if ((await applyChunk(lane, input, SIZE)).kind !== 'chunk') break;
      return { chunks: n, trips: c.trips() - from };
    });
  } finally {
    await lane.session.close();
  }
}

function print(f: Figures): void {
  const per = (v: number) => (v / f.chunks).toFixed(2);
  console.log(`\n${f.label}: ${f.chunks} chunks of ${SIZE} rows`);
  console.log(
    `  round trips ${per(f.roundTrips)} a chunk; WAL ${Math.round(f.walBytes / f.chunks)} bytes a chunk (pg_current_wal_lsn); client CPU ${Math.round(f.clientCpuUs / f.chunks)} µs a chunk`,
  );
  console.log('  calls a chunk | buffers a call | dirtied | WAL records | WAL bytes | statement');
  for (const s of f.statements) {
    const c = s.calls;
    console.log(
      `  ${per(c).padStart(13)} | ${(s.buffers / c).toFixed(1).padStart(14)} | ${(s.dirtied / c).toFixed(2).padStart(7)} | ${(s.walRecords / c).toFixed(2).padStart(11)} | ${Math.round(
        s.walBytes / c,
      )
        .toString()
        .padStart(9)} | ${s.query}`,
    );
  }
  const besides = f.statements.filter((s) => !s.isTransform);
  const sum = (k: 'walRecords' | 'walBytes' | 'buffers') => besides.reduce((a, s) => a + s[k], 0) / f.chunks;
  console.log(
    `  besides the transform, a chunk: ${besides.reduce((a, s) => a + s.calls, 0) / f.chunks} statements, ${sum('buffers').toFixed(1)} buffers, ${sum('walRecords').toFixed(2)} WAL records, ${Math.round(sum('walBytes'))} WAL bytes`,
  );
}

async function main(): Promise<void> {
  const rows = Number(process.argv[2] ?? 200_000);
  const chunks = Number(process.argv[3] ?? 20);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-chunk-cost-'));
  const pg = await startEmbeddedPostgres({
    dir: path.join(dir, 'pg'),
    logFile: path.join(dir, 'postgres.log'),
    settings: {
      shared_preload_libraries: 'pg_stat_statements',
      'pg_stat_statements.track': 'all',
      shared_buffers: '512MB',
      autovacuum: 'off',
      fsync: 'off',
      max_wal_size: '8GB',
    },
  });
  const pool = createPool({ url: pg.url, max: 4 });
  try {
    await migrate(pool);
    const tables = await sql.createTables(pool, rows);
    const [integer, composite] = tables;
    print(await bareChunks(pool, chunks, 1));
    print(await stagefillLane(pool, integer, chunks, 2));
    print(await stagefillLane(pool, composite, chunks, 3));
  } finally {
    await pool.end();
    await pg.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
