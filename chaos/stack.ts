import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { bundleWorkflowCode } from '@temporalio/worker';
import { Connection, Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { startEmbeddedPostgres, startTemporalDevServer, resolveTemporalCli, freePort, sleep } from '../devstack';
import type { EmbeddedPostgres } from '../devstack/postgres';
import type { TemporalDevServer } from '../devstack/temporal';
import type { Service } from '../devstack/process';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { startTcpProxy, type TcpProxy } from './proxy';
import { startWebhookReceiver, type WebhookReceiver } from './webhook';
import type { Tenant } from './fleet';
import * as sql from './sql';

/**
 * The campaign's own stack: a Temporal dev server with its history on disk and an embedded PostgreSQL, each on a
 * port of its own that a restart takes again (same data dir, same port), and worker processes from dist/, so a
 * SIGKILL is a real process dying.
 */
export interface ChaosStack {
  dir: string;
  databaseUrl: string;
  address: string;
  namespace: string;
  client: Client;
  /** The campaign's own pool (application_name stagefill-chaos: never a pg_terminate_backend target). */
  pool: Pool;
  workers: WorkerSlot[];
  /** What the workers reach PostgreSQL through (the campaign's own pool goes direct). */
  proxy: TcpProxy;
  /** The workers' STAGEFILL_WEBHOOK_URL. */
  webhook: WebhookReceiver;
  /** The tenant databases every worker serves as fleet targets (its STAGEFILL_TARGETS file), if any. */
  tenants: Tenant[];
  killTemporal(): Promise<void>;
  restartTemporal(): Promise<void>;
  killPostgres(): Promise<void>;
  restartPostgres(): Promise<void>;
  /** SIGKILL, waited for; the slot stays empty until spawnWorker. */
  killWorker(slot: WorkerSlot): Promise<void>;
  spawnWorker(slot: WorkerSlot): Promise<void>;
  /** SIGSTOP / SIGCONT: a worker that hangs (a GC pause, a frozen VM) and comes back holding what it held. */
  pauseWorker(slot: WorkerSlot): void;
  continueWorker(slot: WorkerSlot): void;
  stop(): Promise<void>;
}

export interface WorkerSlot {
  index: number;
  child?: ChildProcess;
  /** Exits the campaign did not cause: crashes, each a violation. */
  crashes: string[];
  /**
   * Starts refused because Temporal or PostgreSQL was down at that moment (a worker exits 1 with one line then, as
   * designed, and its supervisor starts it again, as the campaign does).
   */
  refusedStarts: number;
  isStopped: boolean;
}

export interface ChaosStackOptions {
  root: string;
  dir: string;
  workers: number;
  taskQueue: string;
  log: (m: string) => void;
  /** A prebuilt workflow bundle (the integration tests have one); else bundled here once for every worker. */
  bundlePath?: string;
  /** Tenant databases to make for fleets (0: none, and the workers get no targets file). */
  tenants: number;
  /**
   * Worker 0's clock runs this many ms ahead (negative: behind), by a preload that offsets Date in that Node process
   * (chaos/clock-skew.ts); 0: no skewed worker.
   */
  clockSkewMs: number;
}

/** The process a devstack guardian runs (the guardian itself is only `sh`). */
export function servicePid(service: Service): number {
  const guardian = service.child.pid!;
  for (const c of childrenOf(guardian)) {
    try {
      if (!fs.readFileSync(`/proc/${c}/cmdline`, 'utf8').startsWith('/bin/sh')) return c;
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no service process under guardian ${guardian}`);
}

function childrenOf(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Starts `start` again until it answers: a port the dev server wants internally can be taken meanwhile on a shared machine. */
async function again<T>(what: string, start: () => Promise<T>, log: (m: string) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 5) throw err;
      log(`${what} did not start (${(err as Error).message.split('\n')[0]}); again`);
      await sleep(1000 * attempt);
    }
  }
}

export async function startChaosStack(opts: ChaosStackOptions): Promise<ChaosStack> {
  const { dir, log } = opts;
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const pgPort = await freePort();
  const temporalPort = await freePort();
  const cli = await resolveTemporalCli(opts.root, log);
  const startPg = () =>
    startEmbeddedPostgres({
      dir: path.join(dir, 'pg'),
      port: pgPort,
      logFile: path.join(dir, 'logs', 'postgres.log'),
      // a process crash keeps what the kernel has; fsync only matters to a power cut, which is not a fault here
      settings: { fsync: 'off', max_connections: 300 },
    });
  const startTemporal = () =>
    startTemporalDevServer({
      cli,
      port: temporalPort,
      headless: true,
      dbFile: path.join(dir, 'temporal.db'),
      logFile: path.join(dir, 'logs', 'temporal.log'),
    });
  let pg: EmbeddedPostgres = await again('PostgreSQL', startPg, log);
  let temporal: TemporalDevServer;
  try {
    temporal = await again('the Temporal dev server', startTemporal, log);
  } catch (err) {
    await pg.stop();
    throw err;
  }
  const pool = createPool({ url: pg.url, max: 12, applicationName: 'stagefill-chaos' });
  await migrate(pool);
  const proxy = await startTcpProxy(pgPort);
  const workerDatabaseUrl = pg.url.replace(`:${pgPort}/`, `:${proxy.port}/`);
  const webhook = await startWebhookReceiver();
  const tenants = await makeTenants(pool, pg.url, proxy.port, opts.tenants);
  const targetsFile = path.join(dir, 'targets.json');
  if (tenants.length)
    fs.writeFileSync(
      targetsFile,
      JSON.stringify(Object.fromEntries(tenants.map((t) => [t.name, { url: t.workerUrl, tags: { campaign: 'chaos' } }])), null, 2),
    );
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection, namespace: temporal.namespace });

  let bundlePath = opts.bundlePath;
  if (!bundlePath) {
    log('bundling the workflows once for every worker');
    const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: quietLogger(log) });
    bundlePath = path.join(dir, 'workflow-bundle.js');
    fs.writeFileSync(bundlePath, code);
  }
  const main = path.join(opts.root, 'dist', 'worker', 'main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first (\`npm run chaos\` does)`);

  const workers: WorkerSlot[] = Array.from({ length: opts.workers }, (_, index) => ({
    index,
    crashes: [],
    refusedStarts: 0,
    isStopped: false,
  }));
  let isStopping = false;
  const expectedExit = new WeakSet<ChildProcess>();

  const spawnWorker = (slot: WorkerSlot): Promise<void> => {
    const logFile = path.join(dir, 'logs', `worker-${slot.index}.log`);
    const out = fs.openSync(logFile, 'a');
    const from = fs.fstatSync(out).size;
    const skew = slot.index === 0 ? opts.clockSkewMs : 0;
    const preload = skew ? ['--require', path.join(opts.root, 'dist', 'chaos', 'clock-skew.js')] : [];
    const child = spawn(process.execPath, [...preload, main], {
      env: {
        ...process.env,
        ...(skew ? { STAGEFILL_CHAOS_CLOCK_SKEW_MS: String(skew) } : {}),
        ...(tenants.length ? { STAGEFILL_TARGETS: targetsFile, STAGEFILL_FLEET_MAX_CONNECTIONS: String(4 * tenants.length) } : {}),
        TEMPORAL_ADDRESS: temporal.address,
        TEMPORAL_NAMESPACE: temporal.namespace,
        DATABASE_URL: workerDatabaseUrl,
        STAGEFILL_WEBHOOK_URL: webhook.url,
        STAGEFILL_TASK_QUEUE: opts.taskQueue,
        STAGEFILL_WORKFLOW_BUNDLE: bundlePath,
        STAGEFILL_DB_POOL_SIZE: '12',
        LOG_LEVEL: 'warn',
        CI: '1',
      },
      stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    slot.child = child;
    slot.isStopped = false;
    child.once('exit', (code, signal) => {
      if (isStopping || expectedExit.has(child)) return;
      const said = since(logFile, from);
      if (code === 1 && /^stagefill worker: cannot reach (Temporal|PostgreSQL)/m.test(said)) {
        slot.refusedStarts++;
        log(`worker ${slot.index} refused to start (a server is down); starting it again`);
        void sleep(1000).then(async () => {
          if (!isStopping) await spawnWorker(slot);
        });
        return;
      }
      slot.crashes.push(`worker ${slot.index} (pid ${child.pid}) crashed (exit ${code ?? signal}): ${lastError(said)}`);
      log(`worker ${slot.index} crashed (${code ?? signal}); see ${logFile}; starting it again`);
      void spawnWorker(slot);
    });
    return Promise.resolve();
  };
  for (const slot of workers) await spawnWorker(slot);

  const stack: ChaosStack = {
    dir,
    databaseUrl: pg.url,
    address: temporal.address,
    namespace: temporal.namespace,
    client,
    pool,
    workers,
    proxy,
    webhook,
    tenants: tenants.map(({ name, pool: p }) => ({ name, pool: p })),
    spawnWorker,
    async killWorker(slot) {
      const child = slot.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      // the campaign's own kill: this exit is no finding
      expectedExit.add(child);
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
      slot.isStopped = false;
    },
    pauseWorker(slot) {
      slot.child?.kill('SIGSTOP');
      slot.isStopped = true;
    },
    continueWorker(slot) {
      slot.child?.kill('SIGCONT');
      slot.isStopped = false;
    },
    async killTemporal() {
      process.kill(servicePid(temporal.service), 'SIGKILL');
      await temporal.service.exited;
    },
    async restartTemporal() {
      temporal = await again('the Temporal dev server', startTemporal, log);
    },
    async killPostgres() {
      // the postmaster and every backend at once, as a host crash takes them: a backend left behind would keep the
      // old shared memory and the restart would refuse the data dir
      const postmaster = servicePid(pg.service);
      const all = [postmaster, ...childrenOf(postmaster)];
      for (const pid of all) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // exited meanwhile
        }
      }
      await pg.service.exited;
      for (let i = 0; i < 50 && all.some(isAlive); i++) await sleep(100);
    },
    async restartPostgres() {
      pg = await again('PostgreSQL', startPg, log);
    },
    async stop() {
      isStopping = true;
      for (const slot of workers) {
        const child = slot.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) continue;
        if (slot.isStopped) child.kill('SIGCONT');
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
      await connection.close().catch(() => {});
      await pool.end().catch(() => {});
      for (const t of tenants) await t.pool.end().catch(() => {});
      await proxy.close().catch(() => {});
      await webhook.close().catch(() => {});
      await temporal.stop().catch(() => {});
      await pg.stop().catch(() => {});
    },
  };
  return stack;
}

/**
 * `count` tenant databases chaos_tenant_<i> on the campaign's PostgreSQL: each with the campaign's own pool to it
 * (direct) and the URL the workers reach it by (through the proxy, so the network faults hit the fleet's targets too).
 */
async function makeTenants(pool: Pool, url: string, proxyPort: number, count: number): Promise<(Tenant & { workerUrl: string })[]> {
  const out: (Tenant & { workerUrl: string })[] = [];
  for (let i = 0; i < count; i++) {
    const name = `f${i}`;
    const database = `chaos_tenant_${i}`;
    await sql.createDatabase(pool, database);
    const direct = new URL(url);
    direct.pathname = `/${database}`;
    const viaProxy = new URL(direct.toString());
    viaProxy.port = String(proxyPort);
    out.push({
      name,
      pool: createPool({ url: direct.toString(), max: 4, applicationName: 'stagefill-chaos' }),
      workerUrl: viaProxy.toString(),
    });
  }
  return out;
}

/** What this run of a worker wrote to its log (from `offset` on), at most the last 8 kB. */
function since(file: string, offset: number): string {
  try {
    return fs.readFileSync(file).subarray(offset).toString('utf8').slice(-8000);
  } catch {
    return '';
  }
}

/** The line naming the error in a crash's output (Node prints the stack after it). */
function lastError(said: string): string {
  const lines = said.split('\n');
  return (lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.filter(Boolean).pop() ?? '').slice(0, 300);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const quietLogger = (log: (m: string) => void) => ({
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (m: string) => log(`bundle: ${m}`),
  error: (m: string) => log(`bundle: ${m}`),
});

/** The state folder and, when PostgreSQL's data had to live elsewhere to be reachable by its user, that folder too. */
export function removeStateDir(dir: string): void {
  const pg = path.join(dir, 'pg');
  if (fs.existsSync(pg)) fs.rmSync(fs.realpathSync(pg), { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
}
