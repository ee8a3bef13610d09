import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPool, detectTransactionPooler } from '../../db/pool';
import { startBackfill } from '../../client/operations';
import type { PgBouncer } from '../../devstack';
import { resolvePgBouncer, startPgBouncer } from '../../devstack';
import { env, spawnWorker, exited, unique, makeCounterTable, waitFor, pool, client, useStack } from './harness';
import { counterSpec, distribution, checkpointChain, connectionFor } from './backfill-checks';
import { recordFacts } from './report';

// Needs dist/ (`npx tsc -p tsconfig.build.json`): `stagefill worker` runs as a real process.
// A real PgBouncer (Debian's package) in front of the run's PostgreSQL: from PATH, or installed
// with apt-get when we are root; otherwise these tests are skipped, saying why.
jest.setTimeout(120_000);

const found = resolvePgBouncer();
const upstream = (() => {
  const u = new URL(env().databaseUrl);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    database: u.pathname.slice(1),
    user: decodeURIComponent(u.username),
    hasPassword: Boolean(u.password),
  };
})();
const why = found.why ?? (upstream.hasPassword ? 'DATABASE_URL has a password; the test PgBouncer logs in without one' : undefined);
if (why) process.stderr.write(`pgbouncer tests skipped: ${why}\n`);
const withPgBouncer = why ? describe.skip : describe;

useStack();

withPgBouncer('behind a real PgBouncer', () => {
  const dirs: string[] = [];
  const bouncers: PgBouncer[] = [];
  const start = async (mode: 'session' | 'transaction') => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `stagefill-pgbouncer-${mode}-`));
    fs.chmodSync(dir, 0o755);
    dirs.push(dir);
    const b = await startPgBouncer(found.bin!, { upstream, mode, dir });
    bouncers.push(b);
    return b;
  };
  afterAll(async () => {
    for (const b of bouncers) await b.stop();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('transaction mode: the probe sees it, and the worker refuses to start with one line naming the fix (exit 1)', async () => {
    const bouncer = await start('transaction');
    const viaBouncer = createPool({ url: bouncer.url, max: 4 });
    try {
      expect(await detectTransactionPooler(viaBouncer)).toEqual({ reason: expect.stringMatching(/server session/) });
    } finally {
      await viaBouncer.end();
    }
    expect(await detectTransactionPooler(pool)).toBeUndefined(); // the direct connection: no pooler

    const w = spawnWorker(unique('q'), { DATABASE_URL: bouncer.url });
    let stderr = '';
    w.stderr!.on('data', (d) => (stderr += d));
    expect(await exited(w)).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^stagefill worker: DATABASE_URL postgres:\/\/.* goes through a transaction-mode pooler \(.*\); .*point DATABASE_URL at PostgreSQL directly .* or at a pool in session mode \(PgBouncer pool_mode = session\)$/,
    );
    expect(w.output()).not.toMatch(/\n\s+at /);
    recordFacts('PgBouncer transaction mode', { detected: true, workerExitCode: 1 });
  });

  test('session mode: the probe passes and a worker through it runs a backfill to the end, every row once', async () => {
    const bouncer = await start('session');
    const viaBouncer = createPool({ url: bouncer.url, max: 4 });
    try {
      expect(await detectTransactionPooler(viaBouncer)).toBeUndefined();
    } finally {
      await viaBouncer.end();
    }
    const table = await makeCounterTable(pool, unique('t'), 10_000);
    const s = counterSpec(table, { chunkSize: 500, parallelism: 2 });
    const taskQueue = unique('q');
    const w = spawnWorker(taskQueue, { DATABASE_URL: bouncer.url, LOG_LEVEL: 'info' });
    try {
      await waitFor('the worker polling', async () => w.output().includes('worker started'), 60_000);
      const { workflowId } = await startBackfill(connectionFor(client, taskQueue), s);
      const result = await client.workflow.getHandle(workflowId).result();
      expect(result.state).toBe('completed');
      expect(await distribution(pool, table)).toEqual({ '1': 10_000 });
      expect((await checkpointChain(pool, table, s.name)).problems).toEqual([]);
      recordFacts('PgBouncer session mode', { rows: 10_000, completed: true });
    } finally {
      w.kill('SIGTERM');
      await exited(w);
    }
  });
});
