// size: most of it is runAll, the benchmark's phases in order (see its reason)
/*
 * (A little over 400 lines on purpose: the benchmark's phases in the order a
 * run takes them, so one file says what a run does; each phase's mechanics
 * live in the modules it imports.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../devstack';
import type { BenchOptions, Skippable } from './options';
import { parseBenchOptions } from './options';
import type { BenchStack } from './stack';
import { startBenchStack } from './stack';
import type { PgTarget } from './pgbench';
import { initPgbench, startLoad, summarize } from './pgbench';
import { underLoad } from './under-load';
import * as sql from './sql';
import type { Contender, ContenderDeps, FillRun } from './contenders';
import { singleStatement, naiveChunks, bareChunks, stagefillBackfill, cpuFloor, fmtK } from './contenders';
import type { BenchResults, AloneResult, LoadResult, KeyTableResult } from './results';
import { REPORTED_SETTINGS, bestAlone, verdicts } from './results';
import { renderResults, writeDoc } from './report';
import { KEY_TABLES, createKeyTables, dropKeyTables, wrongRowsOn, rowsOf } from './keys';
import { installDualWriteTrigger, removeDualWriteTrigger, TRIGGER_SOURCE } from './trigger';
import { cpuSnapshot, otherCores } from './machine';
import { runBudgetPhase, BUDGET_BASELINE_MS } from './budget';
import { stepSvg } from './load-step';

const say = (m: string) => process.stderr.write(`[bench] ${new Date().toISOString().slice(11, 19)} ${m}\n`);

/**
 * `npm run bench`: stagefill against the statements it replaces, on a fresh
 * cluster of its own. Contenders alternate within each round so drift in the
 * machine (other processes, table state) spreads over all of them.
 */
async function main(): Promise<void> {
  const root = projectRoot();
  const opts = parseBenchOptions(process.argv.slice(2), root);
  fs.mkdirSync(opts.stateDir, { recursive: true });
  if (opts.isRenderOnly) {
    const file = path.join(opts.stateDir, 'results.json');
    if (!fs.existsSync(file)) throw new Error(`--render-only: ${file} does not exist; run the benchmark first (or pass its --state-dir)`);
    report(JSON.parse(fs.readFileSync(file, 'utf8')) as BenchResults, root, opts);
    return;
  }
  const results: BenchResults = opts.isResume ? resumeFrom(opts) : newResults(opts);
  say(`starting PostgreSQL and Temporal under ${opts.stateDir}`);
  const bench = await startBenchStack(root, opts.stateDir, opts.pgSettings);
  const stopOnSignal = () => {
    // what was measured so far stays: `--render-only` renders it
    results.finishedAt = new Date().toISOString();
    fs.writeFileSync(path.join(opts.stateDir, 'results.json'), JSON.stringify(results, null, 2));
    say(`interrupted: the figures so far are in ${path.join(opts.stateDir, 'results.json')}; stopping the stack`);
    void bench.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    results.postgres = await sql.serverFacts(bench.pool, Object.keys(opts.pgSettings));
    await runAll(bench, opts, results);
  } finally {
    results.workerPeakRssMb = bench.worker.peakRssMb();
    results.finishedAt = new Date().toISOString();
    fs.writeFileSync(path.join(opts.stateDir, 'results.json'), JSON.stringify(results, null, 2));
    await bench.stop();
  }

  report(results, root, opts);
}

/**
 * `--resume`: the last run's results, and its finished phases added to --skip,
 * so this invocation runs only what that one did not get to (same cluster,
 * same scale; the report says it was resumed).
 */
function resumeFrom(opts: BenchOptions): BenchResults {
  const file = path.join(opts.stateDir, 'results.json');
  if (!fs.existsSync(file)) throw new Error(`--resume: ${file} does not exist; run the benchmark first (or pass its --state-dir)`);
  const r = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchResults;
  if (r.scale !== opts.scale) throw new Error(`--resume: results.json is a run at --scale ${r.scale}; resume it with --scale ${r.scale}`);
  const done: [Skippable, boolean][] = [
    ['alone', r.alone.length > 0],
    ['keys', r.keys !== undefined],
    ['load', r.load.length > 0],
    ['sweep', (r.budget?.sweep.length ?? 0) > 0],
    ['budget', (r.budget?.budgets.length ?? 0) > 0 && r.budget!.budgets.every((b) => b.rounds.length + (b.unfinished?.length ?? 0) > 0)],
    ['step', r.budget?.step !== undefined],
    ['trigger', r.trigger.length > 0],
  ];
  for (const [phase, isDone] of done) if (isDone) opts.skip.add(phase);
  opts.scales = opts.scales.filter((s) => !r.scales.some((p) => p.scale === s));
  say(
    `resuming ${file}: kept ${
      done
        .filter(([, d]) => d)
        .map(([p]) => p)
        .join(', ') || 'nothing'
    }`,
  );
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`;
  return { ...r, resumed: [...(r.resumed ?? []), { at: new Date().toISOString(), command }] };
}

function newResults(opts: BenchOptions): BenchResults {
  return {
    startedAt: new Date().toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: {
      nproc: os.availableParallelism(),
      memoryGb: os.totalmem() / 2 ** 30,
      cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
      kernel: os.release(),
      node: process.version,
    },
    postgres: { version: '', settings: {} },
    scale: opts.scale,
    rows: 0,
    rounds: opts.rounds,
    settings: {
      ...(Object.fromEntries(REPORTED_SETTINGS.map((k) => [k, opts[k]])) as Pick<BenchOptions, (typeof REPORTED_SETTINGS)[number]>),
      budgets: opts.budgets,
      budgetParallelism: opts.budgetParallelism,
      flushAfterKb: opts.flushAfterKb,
      noisyCores: opts.noisyCores,
    },
    alone: [],
    load: [],
    trigger: [],
    triggerSource: '',
    scales: [],
    workerPeakRssMb: Number.NaN,
  };
}

/** Prints the tables and writes the doc; the committed doc holds only runs at scale 50 or more, so a quick run never replaces it. */
function report(results: BenchResults, root: string, opts: BenchOptions): void {
  const generated = renderResults(results);
  process.stdout.write(`\n${generated}\n\n`);
  const doc = opts.doc ?? (results.scale >= 50 ? path.join(root, 'docs', 'BENCHMARKS.md') : path.join(opts.stateDir, 'BENCHMARKS.md'));
  writeDoc(doc, generated);
  if (results.budget?.step) {
    // the load step's picture, beside the doc it belongs to
    const svg = path.join(path.dirname(doc), 'budget-load-step.svg');
    fs.writeFileSync(svg, stepSvg(results.budget.step, results.budget.baselineP99));
    say(`wrote ${path.relative(process.cwd(), svg) || svg}`);
  }
  say(`wrote ${path.relative(process.cwd(), doc) || doc}; the raw figures are in ${path.join(opts.stateDir, 'results.json')}`);
  const missed = verdicts(results).filter((v) => !v.met);
  if (missed.length) say(`${missed.length} target(s) missed: ${missed.map((m) => m.target).join('; ')}`);
}

async function runAll(bench: BenchStack, opts: BenchOptions, results: BenchResults): Promise<void> {
  // size: the benchmark's phases in order (alone, keys, under load, budget, trigger, growth) over one set of contenders and run tags; left whole in #31's pass (a candidate to split into phase functions)
  const target: PgTarget = { bindir: bench.bindir, url: bench.stack.env.DATABASE_URL };
  let tag = 0;
  const nextTag = () => ++tag;

  const prepare = async (scale: number) => {
    say(`pgbench -i -s ${scale}`);
    await removeDualWriteTrigger(bench.pool).catch(() => {});
    await initPgbench(target, scale);
    await sql.addColumn(bench.pool);
    await sql.createCheckpointTable(bench.pool);
    const key = await sql.keyRange(bench.pool);
    // The first fill after pgbench -i extends the table and runs about twice as long as any later one; it is no contender's.
    await sql.settle(bench.pool);
    const t0 = performance.now();
    await sql.singleUpdate(bench.pool, nextTag());
    const warmupMs = performance.now() - t0;
    say(`${key.rows.toLocaleString('en-US')} rows; warm-up fill ${(warmupMs / 1000).toFixed(1)} s`);
    return { key, warmupMs };
  };

  const { key, warmupMs } = await prepare(opts.scale);
  results.rows = key.rows;
  results.warmupMs = warmupMs;
  const deps: ContenderDeps = {
    pool: bench.pool,
    conn: bench.conn,
    key,
    workerPeakRssMb: () => bench.worker.peakRssMb(),
    flushAfterKb: opts.flushAfterKb,
  };
  // A worker's first backfill also compiles its code paths and loads the workflow sandbox; production workers are long-lived.
  // The whole table by default: a 100k-row warm-up left round 1 of the chunked contenders their slowest (the table's pages and
  // the worker's lease path warm up over a full pass), so a full unmeasured pass comes first.
  const warmRange = opts.warmup === 'full' ? undefined : { from: key.from, to: Math.min(key.to, key.from + 100_000) };
  const warm = stagefillBackfill(deps, {
    id: 'warm-up',
    title: 'warm-up',
    chunkSize: opts.chunkSize,
    parallelism: opts.parallelism,
    range: warmRange,
  });
  const warmStart = performance.now();
  await warm.run(nextTag()).catch((err: Error) => {
    throw new Error(`the warm-up backfill failed, so every stagefill run would: ${err.message}`);
  });
  say(`warm-up backfill (${opts.warmup}) ${((performance.now() - warmStart) / 1000).toFixed(1)} s`);
  const single = singleStatement(deps);
  const naive = naiveChunks(deps);
  const bare = bareChunks(deps, { id: 'bare', size: opts.chunkSize, lanes: opts.parallelism, commits: 'like-stagefill' });
  const bareDurable = bareChunks(deps, { id: 'bare-durable', size: opts.chunkSize, lanes: opts.parallelism, commits: 'durable' });
  const sfDefault = stagefillBackfill(deps, {
    id: 'stagefill',
    title: `stagefill defaults (${fmtK(opts.chunkSize)} × ${opts.parallelism})`,
    chunkSize: opts.chunkSize,
    parallelism: opts.parallelism,
  });
  const sfBest = stagefillBackfill(deps, {
    id: 'stagefill-best',
    title: `stagefill best (${fmtK(opts.bestChunkSize)} × ${opts.bestParallelism})`,
    chunkSize: opts.bestChunkSize,
    parallelism: opts.bestParallelism,
  });
  const bareLoad = bareChunks(deps, { id: 'bare-load', size: opts.loadChunkSize, lanes: opts.loadParallelism, commits: 'like-stagefill' });
  const sfLoad = stagefillBackfill(deps, {
    id: 'stagefill-load',
    title: `stagefill for load (${fmtK(opts.loadChunkSize)} × ${opts.loadParallelism}${opts.loadRowsPerSecond ? `, ≤ ${fmtK(opts.loadRowsPerSecond)} rows/s` : ''})`,
    chunkSize: opts.loadChunkSize,
    parallelism: opts.loadParallelism,
    maxRowsPerSecond: opts.loadRowsPerSecond,
  });

  // ---- alone ----
  if (!opts.skip.has('alone')) {
    const contenders = [single, naive, bareDurable, bare, sfDefault, sfBest].filter((c) => picked(opts, c.id));
    const alone = new Map<string, AloneResult>(contenders.map((c) => [c.id, { id: c.id, title: c.title, runs: [] }]));
    results.alone = [...alone.values()];
    // Round 0 is unmeasured (--warmup full): after the two warm-up fills, every contender's round 1 was still its slowest,
    // by 5-37% (2026-12-02), so the machine itself warms up over its first minutes of fills;
    // one pass of every contender absorbs that, and its times stay in results.json to show how much it was.
    for (let round = opts.warmup === 'full' ? 0 : 1; round <= opts.rounds; round++) {
      for (const c of rotate(contenders, round)) {
        await sql.settle(bench.pool);
        const t = nextTag();
        const run = await measured(() => c.run(t));
        const wrong = await sql.wrongRows(bench.pool, t);
        if (wrong !== 0) throw new Error(`${c.title} left ${wrong} rows without the new value (run tag ${t}): the contender is broken`);
        if (round === 0) alone.get(c.id)!.warmMs = run.wallMs;
        else alone.get(c.id)!.runs.push(run);
        say(
          `alone r${round}${round === 0 ? ' (unmeasured)' : ''} ${c.title}: ${(run.wallMs / 1000).toFixed(2)} s, ${run.chunks} chunks, other load ${run.otherCores!.toFixed(2)} cores`,
        );
      }
    }
  }

  // ---- other keys: the same fill on copies keyed by a random uuid and by a skewed (tenant_id, aid) ----
  if (!opts.skip.has('keys')) {
    say('key tables: copying the accounts under a uuid and a (tenant_id, aid) key');
    await createKeyTables(bench.pool);
    results.keys = [];
    for (const t of KEY_TABLES) {
      const pair = [
        singleStatement(deps, t),
        stagefillBackfill(deps, {
          id: `stagefill-${t.id}`,
          title: `stagefill defaults on the ${t.title}`,
          chunkSize: opts.chunkSize,
          parallelism: opts.parallelism,
          on: t,
        }),
      ];
      const k: KeyTableResult = { id: t.id, title: t.title, rows: await rowsOf(bench.pool, t), single: [], stagefill: [] };
      results.keys.push(k);
      for (let round = 1; round <= opts.rounds; round++) {
        for (const c of rotate(pair, round)) {
          await sql.settle(bench.pool);
          const tag = nextTag();
          const run = await measured(() => c.run(tag));
          const wrong = await wrongRowsOn(bench.pool, t, tag);
          if (wrong !== 0)
            throw new Error(`${c.title} on ${t.table} left ${wrong} rows without the new value (run tag ${tag}): the contender is broken`);
          (c.id === 'single' ? k.single : k.stagefill).push(run);
          say(
            `keys r${round} ${t.id} ${c.title}: ${(run.wallMs / 1000).toFixed(2)} s, ${run.chunks} chunks${run.largestChunk ? `, largest ${run.largestChunk} rows` : ''}`,
          );
        }
      }
    }
    await dropKeyTables(bench.pool);
  }

  // ---- under load ----
  if (!opts.skip.has('load')) {
    const estimate = (id: string) => bestAlone(results, id)?.wallMs ?? (key.rows / 1e6) * 8000;
    const singleAloneMs = () => bestAlone(results, 'single')?.wallMs ?? (key.rows / 1e6) * 2800;
    const floor = cpuFloor(deps, { workMs: singleAloneMs, allowedMs: () => 1.25 * singleAloneMs() });
    const contenders = [undefined, single, naive, bare, sfDefault, bareLoad, sfLoad, floor].filter((c) => picked(opts, c?.id ?? 'none'));
    const titleOf = (c?: Contender) => c?.title ?? 'no backfill (load alone)';
    const load = new Map<string, LoadResult>(
      contenders.map((c) => [c?.id ?? 'none', { id: c?.id ?? 'none', title: titleOf(c), rounds: [] }]),
    );
    results.load = [...load.values()];
    // the no-backfill window is as long as a typical backfill, so both see the same amount of traffic
    const baselineMs = Math.max(8000, estimate('stagefill'));
    for (let round = 1; round <= opts.rounds; round++) {
      for (const c of rotate(contenders, round)) {
        await sql.settle(bench.pool);
        const id = c?.id ?? 'none';
        const est = c
          ? c.id === 'cpu-floor'
            ? 1.25 * singleAloneMs()
            : estimate(c.id === 'bare-load' || c.id === 'stagefill-load' ? 'stagefill' : c.id)
          : baselineMs;
        const before = cpuSnapshot();
        const r = await underLoad(target, opts, `${id}-r${round}`, est, c ? (t) => c.run(t) : undefined, nextTag(), baselineMs);
        load.get(id)!.rounds.push({ round, fill: r.fill, latency: r.latency, otherCores: otherCores(before, cpuSnapshot()) });
        say(
          `load r${round} ${titleOf(c)}: ${r.fill ? `${(r.fill.wallMs / 1000).toFixed(2)} s, ` : ''}p50 ${r.latency.p50.toFixed(1)} p99 ${r.latency.p99.toFixed(1)} max ${r.latency.max.toFixed(0)} ms (${r.latency.transactions} txns)`,
        );
      }
    }
  }

  // ---- the latency budget: sweep, budgeted runs, load step ----
  if (!(opts.skip.has('sweep') && opts.skip.has('budget') && opts.skip.has('step'))) {
    const estimate = bestAlone(results, 'stagefill')?.wallMs ?? (key.rows / 1e6) * 8000;
    const fastest = Math.max(
      ...results.alone.flatMap((a) => a.runs.map((r) => (r.rows * 1000) / r.wallMs)).filter(Number.isFinite),
      (key.rows * 1000) / estimate,
    );
    // resumed: the phases it kept stay as they were (the sweep the budgets are judged against, above all)
    const kept = results.budget;
    results.budget = {
      baselineP99: Number.NaN,
      sweep: opts.skip.has('sweep') ? (kept?.sweep ?? []) : [],
      budgets: opts.skip.has('budget') ? (kept?.budgets ?? []) : [],
      step: opts.skip.has('step') ? kept?.step : undefined,
    };
    await runBudgetPhase(
      target,
      opts,
      deps,
      {
        // one long window of the load alone: this machine's commit latency swings, and the p99 of one
        // backfill-long window (8-15 s) came out anywhere from 3.3 to 9.5 ms, which made a budget a lottery
        baselineP99: async () => {
          await sql.settle(bench.pool);
          const r = await underLoad(target, opts, 'budget-baseline', BUDGET_BASELINE_MS, undefined, nextTag(), BUDGET_BASELINE_MS);
          return { p99: r.latency.p99, windowMs: BUDGET_BASELINE_MS, windowP99s: r.windowP99s };
        },
        fastestRowsPerSecond: fastest,
        estimateMs: estimate,
        nextTag,
      },
      results.budget,
    );
  }

  // ---- the dual-write trigger's cost ----
  if (!opts.skip.has('trigger')) {
    results.triggerSource = TRIGGER_SOURCE;
    for (let round = 1; round <= opts.rounds; round++) {
      for (const withTrigger of round % 2 ? [false, true] : [true, false]) {
        await removeDualWriteTrigger(bench.pool);
        await sql.settle(bench.pool);
        if (withTrigger) await installDualWriteTrigger(bench.pool);
        const before = cpuSnapshot();
        const run = startLoad(target, {
          clients: opts.loadClients,
          seconds: opts.triggerSeconds,
          logPrefix: path.join(opts.stateDir, 'pgbench', `trigger-${withTrigger ? 'on' : 'off'}-r${round}`),
        });
        const out = await run.done;
        const latency = summarize(out.transactions, 0, Number.MAX_SAFE_INTEGER);
        const tps = out.tps ?? latency.tps;
        results.trigger.push({ round, withTrigger, tps, latency, otherCores: otherCores(before, cpuSnapshot()) });
        say(`trigger r${round} ${withTrigger ? 'with' : 'without'}: ${tps.toFixed(0)} TPS, p99 ${latency.p99.toFixed(2)} ms`);
      }
    }
    await removeDualWriteTrigger(bench.pool);
  }

  // ---- growth ----
  for (const scale of [...opts.scales].sort((a, b) => a - b)) {
    const reuse = scale === opts.scale && bestAlone(results, 'single') && bestAlone(results, 'stagefill');
    if (reuse) {
      results.scales.push({
        scale,
        rows: key.rows,
        singleMs: bestAlone(results, 'single')!.wallMs,
        stagefill: bestAlone(results, 'stagefill')!,
      });
      continue;
    }
    const p = await prepare(scale);
    const d: ContenderDeps = { ...deps, key: p.key };
    const pair = [
      singleStatement(d),
      stagefillBackfill(d, { id: 'stagefill', title: 'stagefill defaults', chunkSize: opts.chunkSize, parallelism: opts.parallelism }),
    ];
    const runs = new Map<string, FillRun[]>();
    for (let round = 1; round <= opts.rounds; round++) {
      for (const c of rotate(pair, round)) {
        await sql.settle(bench.pool);
        const tag = nextTag();
        const run = await measured(() => c.run(tag));
        runs.set(c.id, [...(runs.get(c.id) ?? []), run]);
        say(`scale ${scale} r${round} ${c.title}: ${(run.wallMs / 1000).toFixed(2)} s`);
      }
    }
    const fastest = (id: string) => runs.get(id)!.reduce((a, b) => (b.wallMs < a.wallMs ? b : a));
    results.scales.push({ scale, rows: p.key.rows, singleMs: fastest('single').wallMs, stagefill: fastest('stagefill') });
  }
}

const picked = (opts: BenchOptions, id: string) => opts.only.size === 0 || opts.only.has(id);

/** A run with how much CPU other work on the machine took meanwhile. */
async function measured(run: () => Promise<FillRun>): Promise<FillRun> {
  const before = cpuSnapshot();
  const r = await run();
  return { ...r, otherCores: otherCores(before, cpuSnapshot()) };
}

/** Round 1 runs the list in order, round 2 reversed, and so on: no contender always follows the same one. */
function rotate<T>(list: T[], round: number): T[] {
  return round % 2 ? [...list] : [...list].reverse();
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
