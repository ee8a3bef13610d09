import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import net from 'node:net';
import { Client as PgClient, Pool } from 'pg';
import { ROOT, env, exited, waitFor, unique, makeCounterTable, openClient } from './harness';
import { counterSpec, distribution, checkpointChain, connectionFor } from './backfill-checks';
import { startBackfill } from '../../client/operations';
import { freePort } from '../../devstack';
import { recordFacts } from './report';

// Needs dist/ (`npx tsc -p tsconfig.build.json`): `stagefill dev` runs as a real process, with its own state dir.
// No useStack(): every test here talks to the stack `stagefill dev` starts, never to the run's shared one.
jest.setTimeout(180_000);

const run = promisify(execFile);
const KEYS = ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_UI', 'TEMPORAL_CLI', 'DATABASE_URL'] as const;
type DevEnv = Record<(typeof KEYS)[number], string>;

let stateDir: string;
let pgHome: string | undefined;
/** This test's "7233 / 8233 / 55432": its own free ports, so it never needs (or takes) the real defaults. */
const preferred = { temporal: 0, ui: 0, postgres: 0 };
/** Something else on the preferred Temporal port: the stack must move, and come back to where it moved. */
let squatter: net.Server;

beforeAll(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-dev-test-'));
  for (const k of Object.keys(preferred) as (keyof typeof preferred)[]) preferred[k] = await freePort();
  squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen(preferred.temporal, '127.0.0.1', resolve));
});
afterAll(async () => {
  await new Promise((resolve) => squatter.close(resolve));
  // the cluster may live behind a link (devstack/postgres.ts): remove both
  if (pgHome) fs.rmSync(pgHome, { recursive: true, force: true });
  fs.rmSync(stateDir, { recursive: true, force: true });
});

/** `stagefill dev` on its own stack: the test stack's addresses are removed from its environment. */
function startDev(extraEnv: NodeJS.ProcessEnv = {}): ChildProcess & { out: () => string } {
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    STAGEFILL_STATE_DIR: stateDir,
    STAGEFILL_DEV_TEMPORAL_PORT: String(preferred.temporal),
    STAGEFILL_DEV_UI_PORT: String(preferred.ui),
    STAGEFILL_DEV_POSTGRES_PORT: String(preferred.postgres),
  };
  for (const k of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_UI', 'DATABASE_URL']) delete childEnv[k];
  Object.assign(childEnv, extraEnv);
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'client', 'cli.js'), 'dev'], {
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return Object.assign(child, { out: () => out });
}

async function fiveLines(dev: ChildProcess & { out: () => string }): Promise<DevEnv> {
  return waitFor(
    'the five lines',
    async () => {
      if (dev.exitCode !== null) throw new Error(`stagefill dev exited ${dev.exitCode}:\n${dev.out()}`);
      const lines = Object.fromEntries(
        dev
          .out()
          .split('\n')
          .map((l) => /^([A-Z_]+)=(.*)$/.exec(l))
          .filter((m): m is RegExpExecArray => Boolean(m))
          .map((m) => [m[1], m[2]]),
      );
      return KEYS.every((k) => lines[k]) && (lines as DevEnv);
    },
    120_000,
  );
}

/** Every process whose command line names this dev stack's state: its Temporal server and its Postgres. */
function stackProcesses(): string[] {
  const needles = [stateDir, ...(pgHome ? [pgHome] : [])];
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd = '';
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue; // gone meanwhile
    }
    if (needles.some((n) => cmd.includes(n)) && !cmd.includes('jest')) found.push(`${pid} ${cmd.slice(0, 120)}`);
  }
  return found;
}

/** A shell that sources dev.env, as a developer's second terminal would, and runs `temporal` with nothing but that. */
async function inSourcedShell(script: string): Promise<string> {
  const clean: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: os.tmpdir() };
  const { stdout } = await run('bash', ['-c', `set -euo pipefail; source "$0"; ${script}`, path.join(stateDir, 'dev.env')], {
    env: clean,
    encoding: 'utf8',
  });
  return stdout;
}

/** A `stagefill worker` process against the dev stack, as a developer's second terminal runs it. */
function spawnDevWorker(dev: DevEnv, taskQueue: string): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'worker', 'main.js')], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: dev.TEMPORAL_ADDRESS,
      TEMPORAL_NAMESPACE: dev.TEMPORAL_NAMESPACE,
      DATABASE_URL: dev.DATABASE_URL,
      STAGEFILL_TASK_QUEUE: taskQueue,
      STAGEFILL_WORKFLOW_BUNDLE: env().bundle,
      LOG_LEVEL: 'info',
      CI: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return Object.assign(child, { output: () => out });
}

test(
  'stagefill dev: five lines, a sourceable dev.env, a second start on its state dir refused, temporal CLI works, user tables in public, no orphans after SIGKILL; ' +
    'restarted on the same addresses, the running worker picks up and the backfill finishes',
  async () => {
    const probe = unique('dev-probe');
    const taskQueue = unique('devq');
    let dev = startDev();
    let worker: ReturnType<typeof spawnDevWorker> | undefined;
    let devPool: Pool | undefined;
    let temporal: Awaited<ReturnType<typeof openClient>> | undefined;
    try {
      const first = await fiveLines(dev);
      // the preferred Temporal port is held by someone else: a free one, said so; the others as preferred
      expect(first.TEMPORAL_ADDRESS).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(first.TEMPORAL_ADDRESS).not.toBe(`127.0.0.1:${preferred.temporal}`);
      expect(dev.out()).toContain(`Temporal frontend: port ${preferred.temporal} is taken; using the free port`);
      expect(first.TEMPORAL_NAMESPACE).toBe('default');
      expect(first.TEMPORAL_UI).toBe(`http://127.0.0.1:${preferred.ui}`);
      expect(fs.existsSync(first.TEMPORAL_CLI)).toBe(true);
      expect(first.DATABASE_URL).toBe(`postgres://postgres@127.0.0.1:${preferred.postgres}/stagefill`);
      const pgLink = path.join(stateDir, 'pg');
      pgHome = fs.realpathSync(pgLink);

      // started twice on one state dir (a second shell without `source dev.env`): it says which stack runs and exits 1
      const twice = startDev();
      expect(await exited(twice)).toBe(1);
      expect(twice.out()).toContain(`a stack is already running from ${stateDir} (stagefill dev or demo, pid ${dev.pid})`);
      expect(twice.out()).toContain(`source ${path.join(stateDir, 'dev.env')}`);
      expect(twice.out()).not.toContain('stagefill dev: ready');
      expect(twice.out()).not.toMatch(/\n\s+at /);
      expect(dev.exitCode).toBeNull();

      // another shell: `source dev.env`, then the temporal CLI reads TEMPORAL_ADDRESS/TEMPORAL_NAMESPACE from it
      const sourced = await inSourcedShell('echo "$TEMPORAL_ADDRESS|$TEMPORAL_NAMESPACE|$TEMPORAL_UI|$TEMPORAL_CLI|$DATABASE_URL"');
      expect(sourced.trim()).toBe(KEYS.map((k) => first[k]).join('|'));
      await inSourcedShell(`"$TEMPORAL_CLI" workflow start --type devProbe --task-queue dev-probe --workflow-id ${probe}`);
      await waitFor('the probe listed', async () => (await inSourcedShell('"$TEMPORAL_CLI" workflow list')).includes(probe), 30_000, 500);
      const ui = await fetch(first.TEMPORAL_UI);
      expect(ui.status).toBe(200);

      // a worker (its start creates stagefill's schema), then a user's unqualified table: it lands in public
      worker = spawnDevWorker(first, taskQueue);
      await waitFor('the worker polling', async () => worker!.output().includes('worker started'), 90_000);
      const db = new PgClient({ connectionString: first.DATABASE_URL });
      await db.connect();
      await db.query('CREATE TABLE kept_across_restarts (id int)');
      const where = await db.query(
        `SELECT to_regclass('public.kept_across_restarts') IS NOT NULL AS public, to_regclass('stagefill.kept_across_restarts') IS NOT NULL AS own`,
      );
      await db.end();
      expect(where.rows[0]).toEqual({ public: true, own: false });

      // a backfill slow enough to be mid-way when the stack dies
      devPool = new Pool({ connectionString: first.DATABASE_URL, max: 2 });
      devPool.on('error', () => {});
      const table = await makeCounterTable(devPool, unique('devt'), 20_000);
      // 80 chunks of >= 0.2 s on 2 lanes: at least 8 s of work, most of it still ahead at the crash
      const s = counterSpec(table, {
        chunkSize: 250,
        parallelism: 2,
        transform: `UPDATE ${table} SET n = n + 1 WHERE id >= :lo AND id < :hi AND (SELECT pg_sleep(0.2)) IS NOT NULL`,
      });
      temporal = await openClient(first.TEMPORAL_ADDRESS);
      const { workflowId } = await startBackfill(connectionFor(temporal.client, taskQueue), s, { leaseMs: 3000 });
      await waitFor('some chunks before the crash', async () => ((await distribution(devPool!, table))['1'] ?? 0) >= 1000, 90_000);
      const rowsBeforeCrash = (await distribution(devPool, table))['1'] ?? 0;
      expect(rowsBeforeCrash).toBeLessThan(20_000);
      await temporal.close();
      temporal = undefined;
      await devPool.end();
      devPool = undefined;

      // SIGKILL: no chance to clean up; the guardians must stop Temporal and Postgres
      expect(stackProcesses().length).toBeGreaterThanOrEqual(2);
      dev.kill('SIGKILL');
      await exited(dev);
      await waitFor('no process of the dev stack left', async () => stackProcesses().length === 0, 60_000);
      expect(worker.exitCode).toBeNull(); // the worker outlives the stack, retrying

      // the preferred Temporal port is still taken: back on the port of last time, the rest as preferred
      dev = startDev();
      const second = await fiveLines(dev);
      expect(second).toEqual(first);
      expect(dev.out()).toContain(
        `Temporal frontend: port ${preferred.temporal} is taken; using ${first.TEMPORAL_ADDRESS.split(':')[1]}, as last time`,
      );
      const described = await inSourcedShell(`"$TEMPORAL_CLI" workflow describe --workflow-id ${probe}`);
      expect(described).toContain('devProbe');
      const db2 = new PgClient({ connectionString: second.DATABASE_URL });
      await db2.connect();
      const kept = await db2.query(`SELECT to_regclass('public.kept_across_restarts') IS NOT NULL AS kept`);
      await db2.end();
      expect(kept.rows[0].kept).toBe(true);

      // the worker that was running reconnects by itself (nothing restarted it) and the backfill finishes
      temporal = await openClient(second.TEMPORAL_ADDRESS);
      const result = await temporal.client.workflow.getHandle(workflowId).result();
      expect(result.state).toBe('completed');
      devPool = new Pool({ connectionString: second.DATABASE_URL, max: 2 });
      devPool.on('error', () => {});
      expect(await distribution(devPool, table)).toEqual({ '1': 20_000 });
      const chain = await checkpointChain(devPool, table, s.name);
      expect(chain.problems).toEqual([]);
      expect(chain.workers.map((w) => w.split(':').pop())).toEqual([String(worker.pid)]);
      expect(worker.exitCode).toBeNull();
      await devPool.end();
      devPool = undefined;
      await temporal.close();
      temporal = undefined;

      dev.kill('SIGTERM');
      expect(await exited(dev)).toBe(0);
      expect(stackProcesses()).toEqual([]);
      recordFacts('stagefill dev SIGKILLed and restarted', {
        orphansAfterSigkill: 0,
        sameAddresses: true,
        historyKept: true,
        databaseKept: true,
        workerReconnected: true,
        rowsBeforeCrash,
        rowsAfterRestart: 20_000 - rowsBeforeCrash,
        exitCodeOnSigterm: 0,
      });
    } finally {
      await temporal?.close().catch(() => {});
      await devPool?.end().catch(() => {});
      for (const child of [worker, dev]) {
        if (child && child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited(child);
        }
      }
    }
  },
);

test('stagefill dev with TEMPORAL_ADDRESS / DATABASE_URL inherited from a stack that is gone: says which and exits 1, before "ready"', async () => {
  const gone = `127.0.0.1:${await freePort()}`;
  for (const [extra, which] of [
    [
      { DATABASE_URL: `postgres://postgres@${gone}/stagefill` },
      /DATABASE_URL=postgres:\/\/postgres@127\.0\.0\.1:\d+\/stagefill \(from the environment\) does not answer/,
    ],
    [{ TEMPORAL_ADDRESS: gone }, /TEMPORAL_ADDRESS=127\.0\.0\.1:\d+ \(from the environment\) does not answer/],
  ] as const) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-dev-gone-'));
    const dev = startDev({ ...extra, STAGEFILL_STATE_DIR: dir });
    const code = await exited(dev);
    fs.rmSync(dir, { recursive: true, force: true });
    expect(code).toBe(1);
    expect(dev.out()).toMatch(which);
    expect(dev.out()).toContain('unset TEMPORAL_ADDRESS');
    expect(dev.out()).not.toContain('ready');
    expect(dev.out()).not.toMatch(/\n\s+at /);
  }
});
