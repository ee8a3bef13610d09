import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { Pool } from 'pg';
import type { DevStack } from '../devstack';
import { startDevStack, findPostgresBindir } from '../devstack';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import type { StagefillConnection } from '../client/connection';
import { connect } from '../client/connection';

/**
 * The server settings of every figure in docs/BENCHMARKS.md. shared_buffers
 * holds scale 50 (~0.7 GB with one dead version per row); a large
 * max_wal_size keeps checkpoints from landing inside one contender's run.
 * Durability stays on: each chunk's commit cost is part of what is measured.
 */
export const POSTGRES_SETTINGS: Record<string, string> = {
  shared_buffers: '1GB',
  max_wal_size: '8GB',
  // Round 1 of most contenders was their slowest. A checkpoint (one settles every run) removes WAL segments
  // beyond its estimate of the next cycle's need, and the next fill then creates and zero-fills new 16 MB files;
  // with min_wal_size this large every segment is recycled, so a round pays the same WAL cost as the next.
  min_wal_size: '4GB',
  checkpoint_timeout: '30min',
  // autovacuum firing inside one contender's run would time it, not the contender
  autovacuum: 'off',
};

export interface BenchStack {
  stack: DevStack;
  pool: Pool;
  conn: StagefillConnection;
  bindir: string;
  taskQueue: string;
  worker: WorkerProcess;
  stop(): Promise<void>;
}

export interface WorkerProcess {
  child: ChildProcess;
  /** Peak resident set of the worker process so far (VmHWM), in MB. */
  peakRssMb(): number;
  stop(): Promise<void>;
}

const say = (m: string) => process.stderr.write(`[bench] ${m}\n`);

/** `extra`: settings over POSTGRES_SETTINGS (`--pg-set`), for experiments. */
export async function startBenchStack(root: string, stateDir: string, extra: Record<string, string> = {}): Promise<BenchStack> {
  if (process.env.DATABASE_URL || process.env.TEMPORAL_ADDRESS) {
    say('ignoring DATABASE_URL / TEMPORAL_ADDRESS: the benchmark starts its own stack so its settings are known');
  }
  delete process.env.DATABASE_URL;
  delete process.env.TEMPORAL_ADDRESS;
  const start = () =>
    startDevStack({
      root,
      stateDir,
      fresh: true,
      persistHistory: false,
      headless: true,
      postgresSettings: { ...POSTGRES_SETTINGS, ...extra },
      log: say,
    });
  // The dev server picks some internal ports itself; on a shared machine one can be taken meanwhile.
  const stack = await start().catch((err: Error) => {
    say(`the stack did not start (${err.message.split('\n')[0]}); trying once more`);
    return start();
  });
  try {
    const pool = createPool({ url: stack.env.DATABASE_URL, max: 16, applicationName: 'stagefill-bench' });
    await migrate(pool);
    // `--pg-set shared_preload_libraries=pg_stat_statements`: p99Ratio budgets become relative to the traffic's p99
    // as pg_stat_statements times it (core/backfill/traffic-latency.ts); left out by default, see docs/BENCHMARKS.md
    if (/\bpg_stat_statements\b/.test(extra.shared_preload_libraries ?? ''))
      await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const bundlePath = path.join(stateDir, 'workflow-bundle.js');
    say('bundling workflows');
    const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: quietLogger });
    fs.writeFileSync(bundlePath, code);
    const taskQueue = `bench-${process.pid}`;
    const worker = await spawnWorker(root, stateDir, {
      ...stack.env,
      STAGEFILL_TASK_QUEUE: taskQueue,
      STAGEFILL_WORKFLOW_BUNDLE: bundlePath,
    });
    const conn = await connect({ address: stack.env.TEMPORAL_ADDRESS, namespace: stack.env.TEMPORAL_NAMESPACE, taskQueue });
    return {
      stack,
      pool,
      conn,
      bindir: stack.postgres?.bindir ?? findPostgresBindir(),
      taskQueue,
      worker,
      async stop() {
        await conn.close().catch(() => {});
        await worker.stop().catch(() => {});
        await pool.end().catch(() => {});
        await stack.stop();
      },
    };
  } catch (err) {
    await stack.stop();
    throw err;
  }
}

/** The worker as its own process, as it runs in production, so its memory is its own. */
async function spawnWorker(root: string, stateDir: string, env: Record<string, string>): Promise<WorkerProcess> {
  const logFile = path.join(stateDir, 'logs', 'worker.log');
  const log = fs.openSync(logFile, 'a');
  const main = path.join(root, 'dist', 'worker', 'main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} is missing: run \`npm run bench\`, which builds first`);
  const child = spawn(process.execPath, ['-r', path.join(__dirname, 'worker-guard.js'), main], {
    env: { ...process.env, ...env, LOG_LEVEL: 'info', CI: '1' },
    stdio: ['ignore', 'pipe', log],
  });
  fs.closeSync(log);
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the worker did not start within 60s; see ${logFile}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      fs.appendFileSync(logFile, d);
      out += d.toString();
      if (/worker started/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the worker exited (${code}) before it started; see ${logFile}`));
    });
  });
  let isStopping = false;
  void exited.then((code) => {
    // every later backfill would wait forever for a worker that is gone
    if (!isStopping) {
      say(`the worker exited (${code}) in the middle of the benchmark; see ${logFile}`);
      process.kill(process.pid, 'SIGTERM');
    }
  });
  return {
    child,
    peakRssMb() {
      const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const m = /VmHWM:\s+(\d+) kB/.exec(status);
      return m ? Number(m[1]) / 1024 : Number.NaN;
    },
    async stop() {
      isStopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

const quietLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (m: string) => say(`bundle: ${m}`),
  error: (m: string) => say(`bundle: ${m}`),
};
