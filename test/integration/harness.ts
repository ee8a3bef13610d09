import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import pino from 'pino';
import { createPool } from '../../db/pool';
import { migrate } from '../../db/migrate';
import { loadWorkerConfig } from '../../worker/config';
import type { StagefillWorker } from '../../worker/run';
import { createStagefillWorker } from '../../worker/run';
import type { ActivityDeps } from '../../activities';
import { projectRoot } from '../../devstack';
import type { StagefillConnection } from '../../client/connection';
import { connect } from '../../client/connection';

export const ROOT = projectRoot();

export function env() {
  const need = (k: string) => {
    const v = process.env[k];
    if (!v) throw new Error(`${k} is not set: run integration tests through jest's integration project (global setup)`);
    return v;
  };
  return {
    address: need('TEMPORAL_ADDRESS'),
    namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
    databaseUrl: need('DATABASE_URL'),
    cli: need('TEMPORAL_CLI'),
    bundle: need('STAGEFILL_TEST_BUNDLE'),
    stateDir: need('STAGEFILL_TEST_STATE_DIR'),
  };
}

let counter = 0;
/** A name no other test (or earlier run against the same database) uses. */
export function unique(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
}

export async function openPool(): Promise<Pool> {
  const pool = createPool({ url: env().databaseUrl, max: 5, applicationName: 'stagefill-test' });
  await migrate(pool);
  return pool;
}

/** A Temporal client of the run's server, or of the one at `address` (its default namespace). */
export async function openClient(address?: string): Promise<{ client: Client; close(): Promise<void> }> {
  const connection = await Connection.connect({ address: address ?? env().address });
  return { client: new Client({ connection, namespace: address ? 'default' : env().namespace }), close: () => connection.close() };
}

/** The file's pool and Temporal client; `useStack()` opens them before its tests and closes them after. */
export let pool: Pool;
export let client: Client;
/** The file's own task queue (set by `useStack()` before the tests), with `worker: true` served by one in-process worker. */
export let taskQueue: string;
/** With `connection: true`: the client library's own connection on `taskQueue`, as the CLI opens it. */
export let conn: StagefillConnection;
/** With `dir`: a temporary folder for the file, removed after its tests. */
export let dir: string;

export interface StackOptions {
  /** One worker in this process on `taskQueue` for all the file's tests. */
  worker?: boolean;
  /** Open `conn` (client/connection's `connect`) on `taskQueue`. */
  connection?: boolean;
  /** Make `dir`, a temporary folder named with this prefix. */
  dir?: string;
  /** The prefix of `taskQueue`. */
  queue?: string;
}

const cleanups: (() => Promise<void> | void)[] = [];
/** Runs `fn` after the current test (last registered first), whether it passed or not; a failing cleanup is ignored. */
export function afterThisTest(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

/**
 * Call once at the top of a test file: one pool and one Temporal client for all its tests, a task queue of its own,
 * and on request a worker on that queue, a client-library connection and a temporary folder; all closed after.
 */
export function useStack(opts: StackOptions = {}): void {
  const closers: (() => Promise<void> | void)[] = [];
  beforeAll(async () => {
    pool = await openPool();
    closers.push(() => pool.end());
    const opened = await openClient();
    client = opened.client;
    closers.push(opened.close);
    taskQueue = unique(opts.queue ?? 'q');
    if (opts.worker) closers.push((await startWorker(taskQueue)).stop);
    if (opts.connection) {
      conn = await connect({ address: env().address, namespace: env().namespace, taskQueue });
      closers.push(() => conn.close());
    }
    if (opts.dir) {
      const made = fs.mkdtempSync(path.join(os.tmpdir(), `${opts.dir}-`));
      dir = made;
      closers.push(() => fs.rmSync(made, { recursive: true, force: true }));
    }
  });
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await Promise.resolve(fn()).catch(() => {});
  });
  afterAll(async () => {
    for (const fn of closers.splice(0).reverse()) await fn();
  });
}

/** The client library's connection shape over the harness's client, so tests start runs the way the CLI does. */
export function connectionFor(client: Client, taskQueue: string): StagefillConnection {
  return { client, taskQueue, namespace: env().namespace, address: env().address, close: async () => {} };
}

export const testLogger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });

/** A worker in this process on its own task queue, built from the run's prebuilt workflow bundle (by default on the run's Temporal). */
export async function startWorker(
  taskQueue: string,
  opts: { faults?: ActivityDeps['faults']; address?: string; namespace?: string } = {},
): Promise<{ sw: StagefillWorker; stop(): Promise<void> }> {
  const e = env();
  const config = loadWorkerConfig({
    TEMPORAL_ADDRESS: opts.address ?? e.address,
    TEMPORAL_NAMESPACE: opts.namespace ?? e.namespace,
    DATABASE_URL: e.databaseUrl,
    STAGEFILL_TASK_QUEUE: taskQueue,
  });
  const sw = await createStagefillWorker({ config, logger: testLogger, workflowBundlePath: e.bundle, faults: opts.faults });
  const running = sw.run();
  return {
    sw,
    async stop() {
      sw.shutdown();
      await running;
    },
  };
}

/** A real worker process (compiled dist/), for SIGKILL and SIGTERM tests. */
export function spawnWorker(taskQueue: string, extraEnv: Record<string, string> = {}): ChildProcess & { output: () => string } {
  const e = env();
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'worker', 'main.js')], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: e.address,
      TEMPORAL_NAMESPACE: e.namespace,
      DATABASE_URL: e.databaseUrl,
      STAGEFILL_TASK_QUEUE: taskQueue,
      STAGEFILL_WORKFLOW_BUNDLE: e.bundle,
      LOG_LEVEL: 'warn',
      CI: '1',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return Object.assign(child, { output: () => out });
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** A table `id bigint primary key, n int` with `rows` rows, made in one statement. */
export async function makeCounterTable(pool: Pool, name: string, rows: number, opts: { step?: number } = {}): Promise<string> {
  const step = opts.step ?? 1;
  await pool.query(`CREATE TABLE public."${name}" (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, v int)`);
  await pool.query(`INSERT INTO public."${name}" (id, n, v) SELECT g * $2, 0, g FROM generate_series(1, $1) g`, [rows, step]);
  await pool.query(`ANALYZE public."${name}"`);
  return `public.${name}`;
}
