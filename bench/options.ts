import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';

/** Everything one benchmark run is told; the defaults are the quick run. */
export interface BenchOptions {
  /** pgbench scale of the main comparison (100,000 rows per unit). */
  scale: number;
  /** Scales for the growth table (stagefill defaults and the single UPDATE, alone). */
  scales: number[];
  rounds: number;
  /** The live load: `pgbench -c clients -R rate`, TPC-B-like. */
  loadClients: number;
  loadRate: number;
  /** Seconds of unthrottled pgbench per trigger-cost round. */
  triggerSeconds: number;
  /** stagefill's defaults (a rollout backfill step's chunkSize and the spec's parallelism); bare chunks use the same. */
  chunkSize: number;
  parallelism: number;
  /** stagefill's best settings, reported separately. */
  bestChunkSize: number;
  bestParallelism: number;
  /** stagefill's settings under load (smaller chunks hold row locks for less time). */
  loadChunkSize: number;
  loadParallelism: number;
  /** throttle.maxRowsPerSecond of "stagefill for load"; none when absent. */
  loadRowsPerSecond?: number;
  /** Where the Markdown report goes; undefined: docs/BENCHMARKS.md at scale >= 50, else the state folder. */
  doc?: string;
  stateDir: string;
  /** Leave out the load, trigger, alone or key-table phase (for iterating on one part). */
  skip: Set<'load' | 'trigger' | 'alone' | 'keys'>;
  /** Run only these contenders (ids as in results.json); all when empty. */
  only: Set<string>;
  /** Run nothing: render the report from the state folder's results.json. */
  isRenderOnly: boolean;
}

const positiveInt = (what: string, max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${what} must be a whole number from 1 to ${max}, got "${v}"`);
  return n;
};

const scaleList = (v: string) => {
  const parts = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (!parts.length) throw new InvalidArgumentError('--scales takes a comma-separated list such as 10,50,100');
  return parts.map((p) => positiveInt('each of --scales', 10_000)(p));
};

const CONTENDERS = ['single', 'naive', 'bare-durable', 'bare', 'stagefill', 'stagefill-best', 'bare-load', 'stagefill-load', 'cpu-floor', 'none'];
const idList = (v: string) => {
  const parts = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of parts) if (!CONTENDERS.includes(p)) throw new InvalidArgumentError(`--only takes contender ids (${CONTENDERS.join(', ')}), got "${p}"`);
  return new Set(parts);
};

const SKIPPABLE = ['load', 'trigger', 'alone', 'keys'] as const;
const skipList = (v: string) => {
  const parts = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of parts) {
    if (!(SKIPPABLE as readonly string[]).includes(p)) throw new InvalidArgumentError(`--skip takes ${SKIPPABLE.join(', ')} (comma-separated), got "${p}"`);
  }
  return new Set(parts as (typeof SKIPPABLE)[number][]);
};

export function parseBenchOptions(argv: string[], root: string): BenchOptions {
  const program = new Command()
    .name('npm run bench --')
    .description('stagefill against the single UPDATE, naive chunks and bare parallel chunks on pgbench_accounts, alone and under live pgbench load')
    .option('--scale <n>', 'pgbench scale of the main comparison (100,000 rows each)', positiveInt('--scale', 10_000), 5)
    .option('--scales <list>', 'also time stagefill and the single UPDATE at these scales, e.g. 10,50,100', scaleList)
    .option('--rounds <n>', 'rounds per contender (the best is reported)', positiveInt('--rounds', 20), 2)
    .option('--load-clients <n>', 'pgbench clients of the live load', positiveInt('--load-clients', 64), 4)
    .option('--load-rate <tps>', 'pgbench -R of the live load', positiveInt('--load-rate', 100_000), 200)
    .option('--trigger-seconds <n>', 'seconds of unthrottled pgbench per trigger-cost round', positiveInt('--trigger-seconds', 3600))
    .option('--chunk-size <n>', 'stagefill default chunk size, also used by bare chunks', positiveInt('--chunk-size', 1_000_000), 5000)
    .option('--parallelism <n>', 'stagefill default lanes, also used by bare chunks', positiveInt('--parallelism', 64), 2)
    .option('--best-chunk-size <n>', 'chunk size of "stagefill best"', positiveInt('--best-chunk-size', 1_000_000), 10_000)
    .option('--best-parallelism <n>', 'lanes of "stagefill best"', positiveInt('--best-parallelism', 64), 3)
    .option('--load-chunk-size <n>', 'chunk size of "stagefill for load"', positiveInt('--load-chunk-size', 1_000_000), 5000)
    .option('--load-parallelism <n>', 'lanes of "stagefill for load"', positiveInt('--load-parallelism', 64), 1)
    .option('--load-rows-per-second <n>', 'throttle.maxRowsPerSecond of "stagefill for load" (default: no limit)', positiveInt('--load-rows-per-second', 100_000_000))
    .option('--skip <parts>', `leave out parts: ${SKIPPABLE.join(', ')}`, skipList)
    .option('--only <ids>', 'run only these contenders, e.g. single,stagefill,none (none: the load without a backfill)', idList)
    .option('--render-only', "write the report from the last run's results.json without running anything")
    .option('--doc <file>', 'write the Markdown report here (default: docs/BENCHMARKS.md at --scale >= 50, else .stagefill/bench/BENCHMARKS.md)')
    .option('--state-dir <dir>', 'where the benchmark cluster, logs and results go', path.join(root, '.stagefill', 'bench'))
    .exitOverride()
    .showHelpAfterError();
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError && (err.code === 'commander.helpDisplayed' || err.code === 'commander.version')) process.exit(0);
    process.exit(2);
  }
  const o = program.opts<{
    scale: number;
    scales?: number[];
    rounds: number;
    loadClients: number;
    loadRate: number;
    triggerSeconds?: number;
    chunkSize: number;
    parallelism: number;
    bestChunkSize: number;
    bestParallelism: number;
    loadChunkSize: number;
    loadParallelism: number;
    loadRowsPerSecond?: number;
    skip?: Set<'load' | 'trigger' | 'alone' | 'keys'>;
    only?: Set<string>;
    renderOnly?: boolean;
    doc?: string;
    stateDir: string;
  }>();
  return {
    scale: o.scale,
    scales: o.scales ?? [],
    rounds: o.rounds,
    loadClients: o.loadClients,
    loadRate: o.loadRate,
    // long enough for p99 to mean something at the unthrottled rate, short for the quick run
    triggerSeconds: o.triggerSeconds ?? (o.scale >= 50 ? 30 : 10),
    chunkSize: o.chunkSize,
    parallelism: o.parallelism,
    bestChunkSize: o.bestChunkSize,
    bestParallelism: o.bestParallelism,
    loadChunkSize: o.loadChunkSize,
    loadParallelism: o.loadParallelism,
    loadRowsPerSecond: o.loadRowsPerSecond,
    doc: o.doc && path.resolve(o.doc),
    stateDir: path.resolve(o.stateDir),
    skip: o.skip ?? new Set(),
    only: o.only ?? new Set(),
    isRenderOnly: Boolean(o.renderOnly),
  };
}
