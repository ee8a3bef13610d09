import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { THROTTLE_DEFAULTS, THROTTLE_LIMITS } from '../core/common/throttle-limits';

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
  /** Leave out phases (load, trigger, alone, keys, sweep, budget, step) when iterating on one part. */
  skip: Set<Skippable>;
  /** The latency-budget phase: fixed settings swept under the load (rates are fractions of the fastest alone rate; 0: no limit). */
  sweepChunks: number[];
  sweepLanes: number[];
  sweepRates: number[];
  /** Budgets as multiples of the no-backfill p99 (stagefill's p99Ratio). */
  budgets: number[];
  /** The budget of the load-step run. */
  stepBudget: number;
  /** Lanes a budgeted backfill may use at most. */
  budgetParallelism: number;
  /** The paired verdict counts and shows on-windows with more other load on the host than this many cores' worth. */
  noisyCores: number;
  /** The unmeasured warm-up backfill: the whole table (full) or its first 100,000 rows (small). */
  warmup: 'full' | 'small';
  /** Run only these contenders (ids as in results.json); all when empty. */
  only: Set<string>;
  /** Run nothing: render the report from the state folder's results.json. */
  isRenderOnly: boolean;
  /** Go on from the state folder's results.json: keep the phases it holds, run the rest. */
  isResume: boolean;
  /** Server settings over the benchmark's own (bench/stack.ts), for experiments; each is shown in the report. */
  pgSettings: Record<string, string>;
  /** throttle.flushAfterKb of every stagefill run and backend_flush_after of bare chunks (0: the server's). */
  flushAfterKb: number;
}

const positiveInt = (what: string, max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new InvalidArgumentError(`${what} must be a whole number from 1 to ${max}, got "${v}"`);
  return n;
};

/** The non-empty, trimmed items of a comma-separated option value. */
const commaList = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const scaleList = (v: string) => {
  const parts = commaList(v);
  if (!parts.length) throw new InvalidArgumentError('--scales takes a comma-separated list such as 10,50,100');
  return parts.map((p) => positiveInt('each of --scales', 10_000)(p));
};

const CONTENDERS = [
  'single',
  'naive',
  'bare-durable',
  'bare',
  'stagefill',
  'stagefill-best',
  'bare-load',
  'stagefill-load',
  'cpu-floor',
  'none',
];
const idList = (v: string) => {
  const parts = commaList(v);
  for (const p of parts)
    if (!CONTENDERS.includes(p)) throw new InvalidArgumentError(`--only takes contender ids (${CONTENDERS.join(', ')}), got "${p}"`);
  return new Set(parts);
};

const SKIPPABLE = ['load', 'trigger', 'alone', 'keys', 'sweep', 'budget', 'step'] as const;
export type Skippable = (typeof SKIPPABLE)[number];

const numberList = (what: string, min: number, max: number, isInteger: boolean) => (v: string) => {
  const parts = commaList(v);
  if (!parts.length) throw new InvalidArgumentError(`${what} takes a comma-separated list`);
  return parts.map((p) => {
    const n = Number(p);
    if (!Number.isFinite(n) || n < min || n > max || (isInteger && !Number.isInteger(n)))
      throw new InvalidArgumentError(`each of ${what} must be a ${isInteger ? 'whole ' : ''}number from ${min} to ${max}, got "${p}"`);
    return n;
  });
};
/** `--pg-set name=value`, repeatable: each adds to the settings collected so far. */
const pgSetting = (v: string, acc: Record<string, string> = {}): Record<string, string> => {
  const [, name, value] = /^([a-z_][a-z0-9_.]*)=(.+)$/.exec(v.trim()) ?? [];
  if (!name || !value)
    throw new InvalidArgumentError(`--pg-set takes name=value (a PostgreSQL setting, e.g. backend_flush_after=256kB), got "${v}"`);
  return { ...acc, [name]: value };
};
const skipList = (v: string) => {
  const parts = commaList(v);
  for (const p of parts) {
    if (!(SKIPPABLE as readonly string[]).includes(p))
      throw new InvalidArgumentError(`--skip takes ${SKIPPABLE.join(', ')} (comma-separated), got "${p}"`);
  }
  return new Set(parts as Skippable[]);
};

export function parseBenchOptions(argv: string[], root: string): BenchOptions {
  // size: commander's table of the benchmark's options, one .option() each
  const program = new Command()
    .name('npm run bench --')
    .description(
      'stagefill against the single UPDATE, naive chunks and bare parallel chunks on pgbench_accounts, alone and under live pgbench load',
    )
    .option('--scale <n>', 'pgbench scale of the main comparison (100,000 rows each)', positiveInt('--scale', 10_000), 5)
    .option('--scales <list>', 'also time stagefill and the single UPDATE at these scales, e.g. 10,50,100', scaleList)
    .option('--rounds <n>', 'rounds per contender (the best is reported)', positiveInt('--rounds', 20), 2)
    .option('--load-clients <n>', 'pgbench clients of the live load', positiveInt('--load-clients', 64), 4)
    .option('--load-rate <tps>', 'pgbench -R of the live load', positiveInt('--load-rate', 100_000), 200)
    .option('--trigger-seconds <n>', 'seconds of unthrottled pgbench per trigger-cost round', positiveInt('--trigger-seconds', 3600))
    .option(
      '--chunk-size <n>',
      'stagefill default chunk size, also used by bare chunks',
      positiveInt('--chunk-size', THROTTLE_LIMITS.chunkSize.max),
      THROTTLE_DEFAULTS.chunkSize,
    )
    .option('--parallelism <n>', 'stagefill default lanes, also used by bare chunks', positiveInt('--parallelism', 64), 2)
    .option('--best-chunk-size <n>', 'chunk size of "stagefill best"', positiveInt('--best-chunk-size', 1_000_000), 10_000)
    .option('--best-parallelism <n>', 'lanes of "stagefill best"', positiveInt('--best-parallelism', 64), 3)
    .option('--load-chunk-size <n>', 'chunk size of "stagefill for load"', positiveInt('--load-chunk-size', 1_000_000), 5000)
    .option('--load-parallelism <n>', 'lanes of "stagefill for load"', positiveInt('--load-parallelism', 64), 1)
    .option(
      '--load-rows-per-second <n>',
      'throttle.maxRowsPerSecond of "stagefill for load" (default: no limit)',
      positiveInt('--load-rows-per-second', 100_000_000),
    )
    .option(
      '--sweep-chunks <list>',
      'latency budget: chunk sizes of the fixed-setting sweep',
      numberList('--sweep-chunks', 1, 1_000_000, true),
      [1000, 5000, 10_000],
    )
    .option('--sweep-lanes <list>', 'latency budget: lanes of the sweep', numberList('--sweep-lanes', 1, 64, true), [1, 2])
    .option(
      '--sweep-rates <list>',
      'latency budget: rate limits of the sweep, as fractions of the fastest alone rate (0: none)',
      numberList('--sweep-rates', 0, 1, false),
      [0, 0.5, 0.25],
    )
    .option('--budgets <list>', 'latency budgets, multiples of the no-backfill p99', numberList('--budgets', 1.05, 100, false), [1.5, 2, 3])
    .option('--step-budget <x>', 'the budget of the load-step run', Number, 2)
    .option('--budget-parallelism <n>', 'most lanes a budgeted backfill may use', positiveInt('--budget-parallelism', 64), 3)
    .option(
      '--noisy-cores <x>',
      "latency budget: a window whose other load on the host (CPU not the benchmark's) is over this many cores is counted as noisy and shown (never dropped)",
      (v: string) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n < 0 || n > 64)
          throw new InvalidArgumentError(`--noisy-cores must be a number from 0 to 64, got "${v}"`);
        return n;
      },
      0.25,
    )
    .option(
      '--warmup <full|small>',
      'the unmeasured warm-up: full (a backfill of the whole table, then round 0: one pass of every alone contender) or small (a 100,000-row backfill)',
      (v: string) => {
        if (v !== 'full' && v !== 'small') throw new InvalidArgumentError(`--warmup takes full or small, got "${v}"`);
        return v;
      },
      'full',
    )
    .option('--skip <parts>', `leave out parts: ${SKIPPABLE.join(', ')}`, skipList)
    .option(
      '--flush-after-kb <n>',
      "throttle.flushAfterKb of every stagefill run, and bare chunks' backend_flush_after (0: the server's own)",
      (v: string) => {
        const n = Number(v);
        const { min, max } = THROTTLE_LIMITS.flushAfterKb;
        if (!Number.isInteger(n) || n < min || n > max)
          throw new InvalidArgumentError(`--flush-after-kb must be a whole number from ${min} to ${max}, got "${v}"`);
        return n;
      },
      THROTTLE_DEFAULTS.flushAfterKb,
    )
    .option(
      '--pg-set <name=value>',
      "a server setting over the benchmark's own (repeatable; an experiment: shown in the report's server line)",
      pgSetting,
    )
    .option('--only <ids>', 'run only these contenders, e.g. single,stagefill,none (none: the load without a backfill)', idList)
    .option('--render-only', "write the report from the last run's results.json without running anything")
    .option(
      '--resume',
      "go on from the last run's results.json (a run stopped part-way): keep the phases it holds, run the rest with this command's options",
    )
    .option(
      '--doc <file>',
      'write the Markdown report here (default: docs/BENCHMARKS.md at --scale >= 50, else .stagefill/bench/BENCHMARKS.md)',
    )
    .option('--state-dir <dir>', 'where the benchmark cluster, logs and results go', path.join(root, '.stagefill', 'bench'))
    .exitOverride()
    .showHelpAfterError();
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError && (err.code === 'commander.helpDisplayed' || err.code === 'commander.version')) process.exit(0);
    process.exit(2);
  }
  // what commander hands back: the options' own fields, with the optional ones and flags as typed on the line
  type Parsed = Omit<BenchOptions, 'scales' | 'triggerSeconds' | 'skip' | 'only' | 'isRenderOnly' | 'isResume' | 'pgSettings'> &
    Partial<Pick<BenchOptions, 'scales' | 'triggerSeconds' | 'skip' | 'only'>> & {
      renderOnly?: boolean;
      resume?: boolean;
      pgSet?: Record<string, string>;
    };
  const { scales, triggerSeconds, skip, only, renderOnly, resume, doc, stateDir, pgSet, ...rest } = program.opts<Parsed>();
  return {
    ...rest,
    scales: scales ?? [],
    // long enough for p99 to mean something at the unthrottled rate, short for the quick run
    triggerSeconds: triggerSeconds ?? (rest.scale >= 50 ? 30 : 10),
    doc: doc && path.resolve(doc),
    stateDir: path.resolve(stateDir),
    skip: skip ?? new Set(),
    only: only ?? new Set(),
    isRenderOnly: Boolean(renderOnly),
    isResume: Boolean(resume),
    pgSettings: pgSet ?? {},
  };
}
