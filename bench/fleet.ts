/*
 * `npm run bench:fleet`: one rollout with a backfill across N tenant databases
 * of M rows, in waves of one target, 10% of the rest and the rest, 8 at a time,
 * on a stack of its own; against the same rollout on one target at a time.
 * Through the public entry points only (the `stagefill tenants` command, the
 * worker process `dist/worker/main.js` with STAGEFILL_TARGETS, the client
 * library's startFleet), so it measures what an operator runs, whatever the
 * worker's insides become.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import YAML from 'yaml';
import { startDevStack, projectRoot } from '../devstack';
import { createPool } from '../db/pool';
import { connect, type StagefillConnection } from '../client/connection';
import { startFleet } from '../client/fleet/start';
import { askWorkers } from '../client/fleet/targets';
import { parseFleetSpec } from '../steps/fleet-spec';
import { fleetConnections, backendCount, vacuumOrders } from './fleet-sql';

const say = (m: string) => process.stderr.write(`[bench:fleet] ${new Date().toISOString().slice(11, 19)} ${m}\n`);

interface FleetBenchOptions {
  dbs: number;
  rows: number;
  parallelism: number;
  /** Worker process counts to run the fleet with. */
  workers: number[];
  /** STAGEFILL_FLEET_MAX_CONNECTIONS of each worker process. */
  maxConnections: number;
  /** Each worker process serves its own slice of the targets (a targets file each, as one process per cluster), not all of them. */
  split: boolean;
  /** How many single-target runs to time (all of them: the sum is measured, not estimated). */
  singles: number;
  stateDir: string;
  out?: string;
}

function parseOptions(argv: string[], root: string): FleetBenchOptions {
  const o: FleetBenchOptions = {
    dbs: 20,
    rows: 20_000,
    parallelism: 8,
    workers: [1, 2],
    maxConnections: 0,
    split: false,
    singles: -1,
    stateDir: path.join(root, '.stagefill', 'bench-fleet'),
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const int = (name: string) => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: expected a positive integer, got "${value}"`);
      i++;
      return n;
    };
    if (flag === '--dbs') o.dbs = int('--dbs');
    else if (flag === '--rows') o.rows = int('--rows');
    else if (flag === '--parallelism') o.parallelism = int('--parallelism');
    else if (flag === '--max-connections') o.maxConnections = int('--max-connections');
    else if (flag === '--singles') o.singles = int('--singles');
    else if (flag === '--split') o.split = true;
    else if (flag === '--workers') {
      o.workers = String(value)
        .split(',')
        .map((v) => Number(v));
      if (o.workers.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--workers: expected e.g. 1,2, got "${value}"`);
      i++;
    } else if (flag === '--state-dir') {
      o.stateDir = path.resolve(String(value));
      i++;
    } else if (flag === '--out') {
      o.out = path.resolve(String(value));
      i++;
    } else
      throw new Error(
        `unknown option ${flag}; options: --dbs N --rows M --parallelism P --workers 1,2 --split --max-connections C --singles K --state-dir D --out results.json`,
      );
  }
  // a worker's bound: 4 per target (2 lanes of the backfill, the step, the gate), at least what 8 targets at once use
  if (!o.maxConnections) o.maxConnections = Math.max(4 * o.dbs, 40);
  if (o.singles < 0) o.singles = o.dbs;
  return o;
}

interface WorkerProc {
  child: ChildProcess;
  peakRssMb(): number;
  stop(): Promise<void>;
}

/** `dist/worker/main.js` with the targets file, as a deployment runs it; resolves once it says it started. */
async function spawnWorker(root: string, logFile: string, env: Record<string, string>): Promise<WorkerProc> {
  const main = path.join(root, 'dist', 'worker', 'main.js');
  const log = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, ...env, LOG_LEVEL: 'info', CI: '1' },
    stdio: ['ignore', 'pipe', log],
  });
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the worker did not start within 120 s; see ${logFile}`)), 120_000);
    child.stdout!.on('data', (d: Buffer) => {
      fs.appendFileSync(logFile, d);
      out += d.toString();
      if (/worker started/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the worker exited before it started; see ${logFile}`));
    });
  });
  return {
    child,
    peakRssMb() {
      const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      return m ? Math.round(Number(m[1]) / 1024) : Number.NaN;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The rollout every target runs: a new column filled by a backfill, then contract. `tag` keeps each phase's column its own. */
function rollout(tag: string) {
  return {
    kind: 'rollout',
    name: `bench-cents-${tag}`,
    table: 'public.orders',
    rollbackWindow: '1s',
    steps: [
      { kind: 'addColumn', column: `cents_${tag}`, type: 'bigint', up: 'round(amount * 100)::bigint', backfill: { chunkSize: 2000 } },
      { kind: 'contract' },
    ],
  };
}

interface PhaseResult {
  name: string;
  targets: number;
  workers: number;
  wallSeconds: number;
  /** Events of the fleet workflow's last run, and how many runs its chain had. */
  historyEvents: number;
  fleetRuns: number;
  peakRssMb: number[];
  /** Most connections the workers held to the targets at once (pg_stat_activity, sampled every 250 ms), and every backend. */
  peakFleetConnections: number;
  peakBackends: number;
  state: string;
}

async function main(): Promise<void> {
  const root = projectRoot();
  const o = parseOptions(process.argv.slice(2), root);
  fs.mkdirSync(path.join(o.stateDir, 'logs'), { recursive: true });
  delete process.env.DATABASE_URL;
  delete process.env.TEMPORAL_ADDRESS;
  say(`starting PostgreSQL and Temporal under ${o.stateDir}`);
  const stack = await startDevStack({
    root,
    stateDir: o.stateDir,
    fresh: true,
    persistHistory: false,
    headless: true,
    // autovacuum off: it firing inside one phase would time it, not the fleet; each phase vacuums before it starts
    postgresSettings: { max_connections: Math.max(200, o.maxConnections * Math.max(...o.workers) + 50), autovacuum: 'off' },
    log: say,
  });
  const env = stack.env;
  const admin = createPool({ url: env.DATABASE_URL, max: 2, applicationName: 'stagefill-bench' });
  let conn: StagefillConnection | undefined;
  const results: PhaseResult[] = [];
  const started = new Date().toISOString();
  try {
    // the tenants, through the CLI an operator would use
    const sqlFile = path.join(o.stateDir, 'tenant.sql');
    fs.writeFileSync(
      sqlFile,
      `CREATE TABLE IF NOT EXISTS public.orders (id bigint PRIMARY KEY, amount numeric(12,2) NOT NULL);\n` +
        `INSERT INTO public.orders SELECT g, round((g % 1000) * 1.37, 2) FROM generate_series(1, ${o.rows}) g ON CONFLICT DO NOTHING;\n`,
    );
    const targetsFile = path.join(o.stateDir, 'targets.yaml');
    say(`making ${o.dbs} tenant databases of ${o.rows.toLocaleString('en-US')} rows (stagefill tenants)`);
    const made = spawnSync(
      process.execPath,
      [
        path.join(root, 'dist', 'client', 'cli.js'),
        'tenants',
        '--count',
        String(o.dbs),
        '--prefix',
        'bench_t',
        '--sql',
        sqlFile,
        '--out',
        targetsFile,
      ],
      { env: { ...process.env, DATABASE_URL: env.DATABASE_URL }, encoding: 'utf8' },
    );
    if (made.status !== 0) throw new Error(`stagefill tenants failed: ${made.stderr}`);
    const names = Array.from({ length: o.dbs }, (_, i) => `bench_t${i + 1}`);
    const targetUrls = names.map((n) => {
      const u = new URL(env.DATABASE_URL);
      u.pathname = `/${n}`;
      return u.toString();
    });
    const taskQueue = `bench-fleet-${process.pid}`;
    conn = await connect({ address: env.TEMPORAL_ADDRESS, namespace: env.TEMPORAL_NAMESPACE, taskQueue });
    const workerEnv = {
      ...env,
      STAGEFILL_TASK_QUEUE: taskQueue,
      STAGEFILL_TARGETS: targetsFile,
      STAGEFILL_FLEET_MAX_CONNECTIONS: String(o.maxConnections),
    };

    const runFleet = async (name: string, tag: string, waves: Record<string, unknown>[], workers: number, targets: number) => {
      // fresh worker processes per phase: their peak RSS is this phase's
      const procs: WorkerProc[] = [];
      for (let w = 0; w < workers; w++) {
        // --split: process w serves every workers-th target only, from a targets file of its own
        const env = o.split && workers > 1 ? { ...workerEnv, STAGEFILL_TARGETS: sliceOf(targetsFile, w, workers) } : workerEnv;
        procs.push(await spawnWorker(root, path.join(o.stateDir, 'logs', `worker-${name}-${w}.log`), env));
      }
      // split: the fleet is started once Temporal lists every process on the control queue (each polls it soon after it starts)
      if (o.split && workers > 1)
        for (let i = 0; ; i++) {
          const served = await askWorkers(conn!, {});
          if (served.targets.length === o.dbs) break;
          if (i >= 60) throw new Error(`the ${workers} worker processes serve ${served.targets.length} of ${o.dbs} targets after 60 tries`);
          await new Promise((r) => setTimeout(r, 1000));
        }
      let peakFleet = 0;
      let peakAll = 0;
      let isSampling = true;
      const sampler = (async () => {
        while (isSampling) {
          peakFleet = Math.max(peakFleet, await fleetConnections(admin).catch(() => 0));
          peakAll = Math.max(peakAll, await backendCount(admin).catch(() => 0));
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      try {
        // every phase starts from tables without dead rows: the earlier phases' backfills left one per row
        for (const url of targetUrls) await vacuumOrders(url);
        const spec = parseFleetSpec({ kind: 'fleet', name: `${name}-${tag}`, change: rollout(tag), waves });
        const t0 = Date.now();
        const run = await startFleet(conn!, spec, { actor: 'bench' });
        const handle = conn!.client.workflow.getHandle(run.workflowId);
        const result = (await handle.result().catch((err: unknown) => {
          const cause = (err as { cause?: { message?: string } }).cause?.message;
          throw new Error(`fleet ${run.workflowId} failed: ${cause ?? String(err)}`);
        })) as { state: string; progress: { run: number } };
        const wallSeconds = (Date.now() - t0) / 1000;
        const history = await handle.fetchHistory();
        return {
          name,
          targets,
          workers,
          wallSeconds,
          historyEvents: history.events?.length ?? 0,
          fleetRuns: result.progress.run,
          peakRssMb: procs.map((p) => p.peakRssMb()),
          peakFleetConnections: peakFleet,
          peakBackends: peakAll,
          state: result.state,
        } satisfies PhaseResult;
      } finally {
        isSampling = false;
        await sampler;
        for (const p of procs) await p.stop();
      }
    };

    const waves = [
      { name: 'canary', share: `${(100 / o.dbs).toFixed(4)}%`, parallelism: o.parallelism },
      { name: 'ten', share: '10%', parallelism: o.parallelism },
      { name: 'rest', share: 'rest', parallelism: o.parallelism },
    ];
    for (const workers of o.workers) {
      const r = await runFleet(`fleet-${workers}w`, `f${workers}`, waves, workers, o.dbs);
      say(
        `fleet of ${o.dbs} with ${workers} worker process${workers === 1 ? '' : 'es'}: ${r.wallSeconds.toFixed(1)} s, ${r.historyEvents} history events, peak RSS ${r.peakRssMb.join('/')} MB, peak connections ${r.peakFleetConnections}`,
      );
      results.push(r);
      save(o, started, results);
    }
    // then one target at a time, each as a fleet of one: the sum is what a loop of `stagefill start` would take
    // (after the fleets: a target changed alone would differ from the others, and the fleet would refuse it)
    for (let i = 0; i < o.singles; i++) {
      const r = await runFleet(`single-${names[i]}`, `s${i + 1}`, [{ name: 'one', names: [names[i]] }], 1, 1);
      say(`single target ${names[i]}: ${r.wallSeconds.toFixed(1)} s (${r.state})`);
      results.push(r);
      save(o, started, results);
    }
  } finally {
    await conn?.close().catch(() => {});
    await admin.end().catch(() => {});
    await stack.stop();
  }
  const file = save(o, started, results);
  process.stdout.write(summary(o, results) + `\nresults: ${file}\n`);
}

/** A targets file of every `of`-th target of `file`, from the `index`-th on (written beside it). */
function sliceOf(file: string, index: number, of: number): string {
  const all = YAML.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  const slice = Object.fromEntries(Object.entries(all).filter((_, i) => i % of === index));
  const out = file.replace(/\.yaml$/, `.${index + 1}-of-${of}.yaml`);
  fs.writeFileSync(out, YAML.stringify(slice));
  return out;
}

function save(o: FleetBenchOptions, started: string, results: PhaseResult[]): string {
  const file = o.out ?? path.join(o.stateDir, 'results.json');
  fs.writeFileSync(file, JSON.stringify({ options: o, started, finished: new Date().toISOString(), results }, null, 2));
  return file;
}

/** The figures as docs/BENCHMARKS.md's fleet table shows them. */
function summary(o: FleetBenchOptions, results: PhaseResult[]): string {
  const singles = results.filter((r) => r.name.startsWith('single-'));
  const sum = singles.reduce((a, r) => a + r.wallSeconds, 0);
  const sorted = singles.map((r) => r.wallSeconds).sort((a, b) => a - b);
  const median = sorted.length ? (sorted[Math.floor((sorted.length - 1) / 2)] ?? 0) : 0;
  const lines = [
    `${o.dbs} databases x ${o.rows.toLocaleString('en-US')} rows, waves 1 / 10% / rest, parallelism ${o.parallelism}, STAGEFILL_FLEET_MAX_CONNECTIONS ${o.maxConnections}${o.split ? ', targets split over the worker processes' : ''}`,
    `one target alone (median of ${singles.length}): ${median.toFixed(1)} s; sum of the ${singles.length} single-target runs: ${sum.toFixed(1)} s${
      singles.length < o.dbs
        ? ` (x ${(o.dbs / singles.length).toFixed(2)} for all ${o.dbs}: ${((sum * o.dbs) / singles.length).toFixed(1)} s)`
        : ''
    }`,
    '| worker processes | wall time | vs sum of single runs | vs one target alone | fleet history events (runs) | worker peak RSS | peak connections to targets (bound) | state |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const fullSum = singles.length ? (sum * o.dbs) / singles.length : 0;
  for (const r of results.filter((x) => x.name.startsWith('fleet-')))
    lines.push(
      `| ${r.workers} | ${r.wallSeconds.toFixed(1)} s | ${fullSum ? `${((r.wallSeconds / fullSum) * 100).toFixed(0)}%` : '-'} | ${median ? `${(r.wallSeconds / median).toFixed(1)}x` : '-'} | ${r.historyEvents} (${r.fleetRuns}) | ${r.peakRssMb.map((m) => `${m} MB`).join(', ')} | ${r.peakFleetConnections} (${r.workers} x ${o.maxConnections}) | ${r.state} |`,
    );
  return lines.join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:fleet: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
