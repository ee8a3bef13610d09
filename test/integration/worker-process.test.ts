import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort } from '../../devstack';
import { ROOT, env, spawnWorker, exited, unique, makeCounterTable, waitFor, pool, useStack } from './harness';
import { distribution, checkpointChain, rowsAgainstCheckpoints } from './backfill-checks';
import { startThroughClient, slowChunkSpec, expectCompletedOnce } from './backfill-harness';
import { recordFacts } from './report';

// Needs dist/ (`npx tsc -p tsconfig.build.json`): `stagefill worker` runs as a real process.
jest.setTimeout(150_000);

useStack();

async function runToExit(extraEnv: Record<string, string>): Promise<{ code: number | null; stderr: string; output: string }> {
  const w = spawnWorker(unique('q'), extraEnv);
  let stderr = '';
  w.stderr!.on('data', (d) => (stderr += d));
  const code = await exited(w);
  return { code, stderr: stderr.trim(), output: w.output() };
}

describe('a worker with a bad or unreachable configuration exits with one clear line', () => {
  const cases: [string, () => Promise<Record<string, string>>, number, RegExp][] = [
    [
      'TEMPORAL_ADDRESS not host:port',
      async () => ({ TEMPORAL_ADDRESS: 'temporal.internal' }),
      2,
      /^stagefill worker: TEMPORAL_ADDRESS: expected host:port/,
    ],
    [
      'DATABASE_URL not a postgres URL',
      async () => ({ DATABASE_URL: 'mysql://app@db:3306/app' }),
      2,
      /^stagefill worker: DATABASE_URL: expected a postgres:\/\/ URL/,
    ],
    [
      'STAGEFILL_DB_POOL_SIZE not a number',
      async () => ({ STAGEFILL_DB_POOL_SIZE: 'many' }),
      2,
      /^stagefill worker: STAGEFILL_DB_POOL_SIZE: /,
    ],
    [
      'Temporal unreachable',
      async () => ({ TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` }),
      1,
      /^stagefill worker: cannot reach Temporal at 127\.0\.0\.1:\d+: /,
    ],
    [
      'PostgreSQL unreachable',
      async () => ({ DATABASE_URL: `postgres://stagefill:s3cret@127.0.0.1:${await freePort()}/stagefill` }),
      1,
      /^stagefill worker: cannot reach PostgreSQL at postgres:\/\/stagefill:\*\*\*@127\.0\.0\.1:\d+\/stagefill: .*ECONNREFUSED/,
    ],
    [
      'PostgreSQL database missing',
      async () => ({ DATABASE_URL: env().databaseUrl.replace(/\/[^/]+$/, '/no_such_db') }),
      1,
      /^stagefill worker: cannot reach PostgreSQL at .*: database "no_such_db" does not exist/,
    ],
  ];
  test.each(cases)('%s', async (_what, makeEnv, code, line) => {
    const r = await runToExit(await makeEnv());
    expect(r.code).toBe(code);
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(line);
    expect(r.output).not.toMatch(/\n\s+at /); // no stack trace anywhere
    expect(r.output).not.toContain('s3cret');
  });
});

test('bin/stagefill (the package bin and the Docker entrypoint) runs the CLI: `stagefill worker` with a bad config exits 2', async () => {
  const bin = path.join(ROOT, 'bin', 'stagefill');
  const { stdout } = await promisify(execFile)(process.execPath, [bin, '--version'], { encoding: 'utf8' });
  expect(stdout.trim()).toBe(require('../../package.json').version);
  const childEnv = { ...process.env, TEMPORAL_ADDRESS: 'not an address' };
  const err = await promisify(execFile)(process.execPath, [bin, 'worker'], { env: childEnv, encoding: 'utf8' }).catch((e) => e);
  expect(err.code).toBe(2);
  expect(err.stderr.trim()).toMatch(/^stagefill worker: TEMPORAL_ADDRESS: expected host:port/);
});

test('SIGTERM mid-backfill drains (in-flight chunks commit) and exits 0; another worker finishes with every row once', async () => {
  const table = await makeCounterTable(pool, unique('t'), 30_000);
  // chunks that take a while inside their transaction, so some are in flight at SIGTERM
  const s = slowChunkSpec(table, 500, 0.1);
  const taskQueue = unique('q');
  const first = spawnWorker(taskQueue, { LOG_LEVEL: 'info' });
  let second: ReturnType<typeof spawnWorker> | undefined;
  try {
    await waitFor('first worker polling', async () => first.output().includes('worker started'), 60_000);
    const { handle } = await startThroughClient(taskQueue, s, { leaseMs: 3000 });
    const rowsNow = async () => (await distribution(pool, table))['1'] ?? 0;
    await waitFor('some chunks', async () => (await rowsNow()) >= 2000);

    first.kill('SIGTERM');
    expect(await exited(first)).toBe(0);
    expect(first.output()).toContain('draining');
    // drained: what the first worker left is a clean prefix of each partition, nothing half-applied
    const mid = await checkpointChain(pool, table, s.name, { complete: false });
    expect(mid.problems).toEqual([]);
    expect(await rowsAgainstCheckpoints(pool, table, mid.backfillId, mid.generation)).toEqual({ changedOutside: 0, unchangedInside: 0 });
    expect(mid.rows).toBeLessThan(30_000);

    second = spawnWorker(taskQueue);
    const { chain } = await expectCompletedOnce(handle, table, s.name, 30_000);
    expect(chain.workers.map((w) => w.split(':').pop()).sort()).toEqual([String(first.pid), String(second.pid)].sort());
    recordFacts('worker SIGTERM mid-backfill', {
      exitCode: 0,
      rowsByFirstWorker: mid.rows,
      rowsByNextWorker: 30_000 - mid.rows,
      rowsChangedTwice: 0,
    });
  } finally {
    for (const w of [first, second]) {
      if (!w) continue;
      w.kill('SIGKILL');
      await exited(w);
    }
  }
});
