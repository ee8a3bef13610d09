import fs from 'node:fs';
import path from 'node:path';
import { sleep } from '../devstack';
import type { BackfillProgress } from '../workflows/definitions';
import { progressQuery } from '../workflows/definitions';
import type { LoadRun, PgTarget, Transaction, LatencySummary } from './pgbench';
import { startLoad, perWindow, summarize } from './pgbench';
import type { BenchOptions } from './options';
import type { Contender, ContenderDeps, FillRun } from './contenders';
import { stagefillBackfill, stagefillWorkflowId, fmtK } from './contenders';
import { underLoad, UnderLoadFailure } from './under-load';
import type { UnderLoadResult } from './under-load';
import type { CpuSnapshot } from './machine';
import { cpuSnapshot, otherCores, stealCores, startCpuReadings } from './machine';
import { pairedVerdict, runWindows, withOtherLoad, offWindowsOf, pairedFrontier, budgetVerdict } from './paired-windows';
import type { PairedRecord, Span, HoldSample, CpuReading } from './paired-windows';
import { readThrottleMemory, rememberThrottle } from '../db/backfill/health';
import type { RememberedSettings } from '../core/backfill/throttle-memory';
import * as sql from './sql';

/**
 * The latency-budget part of the benchmark: a sweep of fixed settings under
 * the load (chunk size × lanes × rate) gives the wall/p99 frontier; stagefill
 * with a budget of 1.5×, 2× and 3× the no-backfill p99 runs under the same
 * load and is held to the fastest fixed setting that kept the same budget;
 * and a load step (the load's rate doubles mid-run) shows the controller
 * giving way and taking back.
 */

export interface SweepPoint {
  id: string;
  title: string;
  chunkSize: number;
  lanes: number;
  /** throttle.maxRowsPerSecond; undefined: none. */
  rowsPerSecond?: number;
  fill: FillRun;
  latency: LatencySummary;
  /** The paired verdict's windows: the load alone before and after the run, one on-window (absent in older results). */
  paired?: PairedRecord;
}

/** What the machine and the load did around one budgeted round, finished or not (absent in older results). */
export interface RoundContext {
  /** The load by itself in the probe's baseline, before the first chunk. */
  before?: LatencySummary;
  /** Cores' worth of CPU other work took during the round, the host's steal included. */
  otherCores?: number;
  /** Cores' worth of the host's steal during the round; the machine's busy time, and so otherCores, counts it. */
  stealCores?: number;
}

export interface BudgetRound extends RoundContext {
  round: number;
  fill: FillRun;
  latency: LatencySummary;
  /** The paired verdict's windows: its on-windows against the off-windows beside them (absent in older results). */
  paired?: PairedRecord;
  /** The remembered settings (stagefill.throttle_memory) the round found: undefined, it started cold (absent in older results). */
  fromMemory?: RememberedSettings | null;
  /** How long the probe's first baseline took, read from progress (absent in older results: PROBE_BASELINE_MS). */
  baselineMs?: number;
}

/** A round stopped at its deadline: why, and what the load measured until then. */
export interface UnfinishedRound extends RoundContext {
  round: number;
  reason: string;
  latency?: LatencySummary;
}

/** Other work and steal on the machine since `from`. */
function machineSince(from: CpuSnapshot): Pick<RoundContext, 'otherCores' | 'stealCores'> {
  const now = cpuSnapshot();
  return { otherCores: otherCores(from, now), stealCores: stealCores(from, now) };
}

/** The paired verdict's windows: 10 s of the load alone before and after each run, on-windows of 5 s (a remainder under 3 s joins the one before). */
export const PAIRED_WINDOWS = { beforeMs: 10_000, afterMs: 10_000, onMs: 5_000, minMs: 3_000, settleMs: 1_000 } as const;

/**
 * One run's paired record: its windows (the off-windows before and after it
 * and the controller's off-windows inside it, the rest cut into on-windows),
 * the other load in each from the CPU readings, each on-window's p99 against
 * its neighbours' (judged at ratio 1: a budget judges them again), the pooled
 * ratio, and every off-window's p99 and other load.
 */
export function pairedRecordOf(
  r: Pick<UnderLoadResult, 'txns' | 'fromMs' | 'toMs' | 'offBefore' | 'offAfter'>,
  offs: readonly Span[],
  cpu: readonly CpuReading[],
  noisyCores: number,
): PairedRecord {
  const windows = withOtherLoad(
    runWindows({
      run: { fromMs: r.fromMs, toMs: r.toMs },
      before: r.offBefore,
      after: r.offAfter,
      offs,
      sizeMs: PAIRED_WINDOWS.onMs,
      minMs: PAIRED_WINDOWS.minMs,
    }),
    cpu,
  );
  const v = pairedVerdict(r.txns, windows, 1, { otherCoresThreshold: noisyCores, wallMs: 0 });
  return {
    windows: v.windows,
    pooledRatio: v.pooledRatio,
    offWindows: windows
      .filter((w) => !w.isOn)
      .map((w) => ({ fromMs: w.fromMs, toMs: w.toMs, p99: summarize(r.txns, w.fromMs, w.toMs).p99, otherCores: w.otherCores })),
  };
}

/**
 * Reads a running backfill's progress every 500 ms: when its controller held
 * for an off-window (the baseline's refresh). Every reading's controller view
 * goes to `tracePath` (JSON lines: rows, settings, probe p99, budget, action,
 * reason), the evidence for tuning the controller.
 */
function followOffWindows(
  deps: ContenderDeps,
  workflowId: string,
  tracePath: string,
): { stop(): Promise<{ offs: Span[]; baseline?: Span }> } {
  const samples: HoldSample[] = [];
  let baselineFrom: number | undefined;
  let baselineTo: number | undefined;
  let isDone = false;
  const handle = deps.conn.client.workflow.getHandle(workflowId);
  fs.mkdirSync(path.dirname(tracePath), { recursive: true });
  const trace = fs.createWriteStream(tracePath);
  const loop = (async () => {
    while (!isDone) {
      const p = (await handle.query(progressQuery).catch(() => undefined)) as BackfillProgress | undefined;
      if (p) {
        const atMs = Date.now();
        samples.push({ atMs, isOffWindow: p.control?.hold === true && p.control.holdCause === 'baseline' });
        const c = p.control;
        // the first baseline: from the first reading measuring it to the first that is past it
        if (c?.action === 'measuring' && c.holdCause === 'baseline') baselineFrom ??= atMs;
        else if (baselineFrom !== undefined) baselineTo ??= atMs;
        trace.write(
          JSON.stringify({
            atMs,
            rows: p.rowsProcessed,
            rate: c?.rowsPerSecond,
            lanes: c?.lanes,
            chunk: c?.chunkSize,
            hold: c?.hold,
            holdCause: c?.holdCause,
            p99: c?.p99Ms,
            budget: c?.budgetP99Ms,
            baseline: c?.baselineP99Ms,
            traffic: c?.trafficP99Ms,
            reference: c?.budgetReference,
            samples: c?.samples,
            observed: c?.observedRowsPerSecond,
            action: c?.action,
            reason: c?.reason,
          }) + '\n',
        );
      }
      await sleep(500);
    }
  })();
  return {
    async stop() {
      isDone = true;
      await loop;
      trace.end();
      return {
        offs: offWindowsOf(samples, PAIRED_WINDOWS.settleMs, PAIRED_WINDOWS.minMs),
        baseline: baselineFrom !== undefined && baselineTo !== undefined ? { fromMs: baselineFrom, toMs: baselineTo } : undefined,
      };
    },
  };
}

/** The fastest fixed setting that kept `ratio` by the paired measure (bench/paired-windows.ts keptByPairs). */
export function pairedFastestWithin(r: Pick<BudgetResults, 'sweep'>, ratio: number): SweepPoint | undefined {
  return pairedFrontier(
    r.sweep.map((p) => ({ ...p, wallMs: p.fill.wallMs })),
    ratio,
  );
}

/** A budget's paired verdict over its finished rounds, against the paired frontier. */
export function budgetPairedVerdict(r: BudgetResults, ratio: number): ReturnType<typeof budgetVerdict> & { frontier?: SweepPoint } {
  const rounds = (r.budgets.find((b) => b.ratio === ratio)?.rounds ?? []).flatMap((x) =>
    x.paired ? [{ wallMs: budgetWallMs(r, x), paired: x.paired }] : [],
  );
  const frontier = pairedFastestWithin(r, ratio);
  return { ...budgetVerdict(rounds, ratio, frontier?.fill.wallMs), frontier };
}

export interface BudgetResult {
  /** p99Ratio given to stagefill; the pgbench budget is this × the no-backfill p99. */
  ratio: number;
  title: string;
  rounds: BudgetRound[];
  /** Rounds stopped at their deadline (absent in older results): why, per round. */
  unfinished?: UnfinishedRound[];
}

export interface StepSample {
  /** ms since the backfill started. */
  t: number;
  rowsProcessed: number;
  allowedRowsPerSecond?: number;
  probeP99Ms?: number;
  budgetP99Ms?: number;
  hold?: boolean;
  action?: string;
}

export interface StepWindow {
  /** ms since the backfill started, of the window's start. */
  fromMs: number;
  p99: number;
  transactions: number;
}

export interface LoadStepResult {
  ratio: number;
  baseRate: number;
  stepAtMs: number;
  wallMs: number;
  samples: StepSample[];
  /** The load's p99 per 10 s window (scheduled start). */
  windows: StepWindow[];
  /** The same per second, for the plot. */
  seconds: StepWindow[];
}

export interface BudgetResults {
  /** The no-backfill p99 the budgets are multiples of (ms, pgbench). */
  baselineP99: number;
  /** How long that p99 was measured over (ms; absent in older results). */
  baselineWindowMs?: number;
  /** The same load's p99 in each 10 s of that window: how far it moves with no backfill. */
  baselineWindowP99s?: number[];
  /**
   * How long each budgeted run's probe measured its own baseline before the
   * first chunk (ms; absent in older results: 0). The load's latency counts
   * from after it, and the wall compared with fixed settings leaves it out.
   */
  probeBaselineMs?: number;
  sweep: SweepPoint[];
  budgets: BudgetResult[];
  step?: LoadStepResult;
}

const say = (m: string) => process.stderr.write(`[bench] ${new Date().toISOString().slice(11, 19)} ${m}\n`);

/** The fixed settings of the sweep: every chunk size × lanes × rate (a fraction of the fastest alone rate; 0: no limit). */
export function sweepSettings(
  opts: BenchOptions,
  fastestRowsPerSecond: number,
): { chunkSize: number; lanes: number; rowsPerSecond?: number }[] {
  const out: { chunkSize: number; lanes: number; rowsPerSecond?: number }[] = [];
  for (const chunkSize of opts.sweepChunks) {
    for (const lanes of opts.sweepLanes) {
      for (const f of opts.sweepRates)
        out.push({ chunkSize, lanes, rowsPerSecond: f > 0 ? Math.max(100, Math.round(fastestRowsPerSecond * f)) : undefined });
    }
  }
  return out;
}

export async function runBudgetPhase(
  target: PgTarget,
  opts: BenchOptions,
  deps: ContenderDeps,
  o: {
    baselineP99: () => Promise<{ p99: number; windowMs: number; windowP99s: number[] }>;
    fastestRowsPerSecond: number;
    estimateMs: number;
    nextTag: () => number;
  },
  out: BudgetResults,
): Promise<void> {
  const base = await o.baselineP99();
  out.baselineP99 = base.p99;
  out.baselineWindowMs = base.windowMs;
  out.baselineWindowP99s = base.windowP99s;
  out.probeBaselineMs = PROBE_BASELINE_MS;
  say(`budget: no-backfill p99 ${out.baselineP99.toFixed(2)} ms`);

  if (!opts.skip.has('sweep')) {
    for (const st of sweepSettings(opts, o.fastestRowsPerSecond)) {
      const id = `fixed-${st.chunkSize}x${st.lanes}${st.rowsPerSecond ? `-r${st.rowsPerSecond}` : ''}`;
      const title = `${fmtK(st.chunkSize)} × ${st.lanes}${st.rowsPerSecond ? ` ≤ ${fmtK(st.rowsPerSecond)} rows/s` : ''}`;
      const c = stagefillBackfill(deps, { id, title, chunkSize: st.chunkSize, parallelism: st.lanes, maxRowsPerSecond: st.rowsPerSecond });
      await sql.settle(deps.pool);
      const est = st.rowsPerSecond ? (deps.key.to - deps.key.from) * (1000 / st.rowsPerSecond) : o.estimateMs;
      const cpu = startCpuReadings();
      let r: UnderLoadResult;
      try {
        r = await underLoad(target, opts, `sweep-${id}`, est, (t) => c.run(t), o.nextTag(), est, 0, PAIRED_WINDOWS);
      } finally {
        cpu.stop();
      }
      const paired = pairedRecordOf(r, [], cpu.readings, opts.noisyCores);
      out.sweep.push({ id, title, ...st, fill: r.fill!, latency: r.latency, paired });
      say(
        `sweep ${title}: ${(r.fill!.wallMs / 1000).toFixed(2)} s, load p99 ${r.latency.p99.toFixed(1)} ms (${(r.latency.p99 / out.baselineP99).toFixed(2)}×); ` +
          `paired: on/off p99 ${paired.pooledRatio.toFixed(2)}× over ${paired.windows.length} on-window(s)`,
      );
    }
  }

  if (!opts.skip.has('budget')) {
    const contenders = opts.budgets.map((ratio) => ({ ratio, c: budgetContender(deps, opts, ratio, o.estimateMs) }));
    for (const b of contenders) out.budgets.push({ ratio: b.ratio, title: b.c.title, rounds: [] });
    // what each budget's last round left in the table's throttle memory: its next round starts from it, round 1 cold
    const remembered = new Map<number, RememberedSettings>();
    for (let round = 1; round <= opts.rounds; round++) {
      for (const b of round % 2 ? contenders : [...contenders].reverse()) {
        await sql.settle(deps.pool);
        const result = out.budgets.find((x) => x.ratio === b.ratio)!;
        await sql.forgetThrottleMemory(deps.pool);
        const memory = round > 1 ? remembered.get(b.ratio) : undefined;
        if (memory) await rememberThrottle(deps.pool, sql.TABLE, memory);
        const cpu = cpuSnapshot();
        const readings = startCpuReadings();
        const tag = o.nextTag();
        const offs = followOffWindows(
          deps,
          stagefillWorkflowId(b.c.id, tag),
          path.join(opts.stateDir, 'budget-trace', `budget-${b.ratio}-r${round}.jsonl`),
        );
        let r: UnderLoadResult;
        try {
          r = await underLoad(
            target,
            opts,
            `budget-${b.ratio}-r${round}`,
            o.estimateMs * 3 + PROBE_BASELINE_MS,
            (t) => b.c.run(t),
            tag,
            o.estimateMs,
            PROBE_BASELINE_MS,
            PAIRED_WINDOWS,
          );
        } catch (err) {
          await offs.stop();
          // a budget the controller cannot meet fast enough is a result, not the end of the benchmark
          if (!(err instanceof UnderLoadFailure) || !/did not finish within/.test(err.message)) throw err;
          const { latency, before } = err.load;
          (result.unfinished ??= []).push({ round, reason: err.message, latency, before, ...machineSince(cpu) });
          say(`budget ${b.ratio}× r${round}: ${err.message}; load p99 ${latency.p99.toFixed(1)} ms until then`);
          continue;
        } finally {
          readings.stop();
        }
        const seen = await offs.stop();
        // the backfill began when the probe's baseline ended, as its progress showed: the paired windows start there
        const began = seen.baseline ? Math.max(r.fromMs, seen.baseline.toMs) : r.fromMs;
        const paired = pairedRecordOf(
          { ...r, fromMs: began, offBefore: { fromMs: began - PAIRED_WINDOWS.beforeMs, toMs: began } },
          seen.offs,
          readings.readings,
          opts.noisyCores,
        );
        const left = await readThrottleMemory(deps.pool, sql.TABLE);
        if (left) remembered.set(b.ratio, left);
        const done: BudgetRound = {
          round,
          fill: r.fill!,
          latency: r.latency,
          before: r.before,
          paired,
          fromMemory: memory ?? null,
          baselineMs: seen.baseline && seen.baseline.toMs - seen.baseline.fromMs,
          ...machineSince(cpu),
        };
        result.rounds.push(done);
        const v = budgetVerdict([{ wallMs: budgetWallMs(out, done), paired }], b.ratio, pairedFastestWithin(out, b.ratio)?.fill.wallMs);
        say(
          `budget ${b.ratio}× r${round}${memory ? ' (memory offered)' : ''}: ${(budgetWallMs(out, done) / 1000).toFixed(2)} s after the baseline, load p99 ${r.latency.p99.toFixed(1)} ms (${(r.latency.p99 / out.baselineP99).toFixed(2)}×, budget ${b.ratio}×); ` +
            `paired: ${Math.round(v.withinShare * 100)}% of ${v.windows} on-windows within, pooled ${v.worstPooledRatio.toFixed(2)}×, wall ${v.wallRatio.toFixed(2)}× the paired frontier, ${v.noisyWindows} noisy`,
        );
      }
    }
  }

  if (!opts.skip.has('step')) {
    const ratio = opts.stepBudget;
    const best = bestBudget(out, ratio);
    const est = best ? budgetWallMs(out, best) : o.estimateMs * 3;
    await sql.settle(deps.pool);
    out.step = await loadStep(target, opts, deps, ratio, o.nextTag(), PROBE_BASELINE_MS + Math.max(8000, 0.4 * est));
    say(
      `load step: budget ${ratio}×, rate doubled at ${(out.step.stepAtMs / 1000).toFixed(0)} s, wall ${(out.step.wallMs / 1000).toFixed(1)} s`,
    );
  }
}

export function budgetContender(deps: ContenderDeps, opts: BenchOptions, ratio: number, estimateMs: number): Contender {
  return stagefillBackfill(deps, {
    deadlineMs: PROBE_BASELINE_MS + Math.max(180_000, 10 * estimateMs),
    id: `budget-${ratio}`,
    title: `stagefill, budget p99Ratio ${ratio} (${fmtK(opts.chunkSize)} start, ≤ ${opts.budgetParallelism} lanes)`,
    chunkSize: opts.chunkSize,
    parallelism: opts.budgetParallelism,
    throttle: {
      latency: {
        p99Ratio: ratio,
        probe: loadProbe(deps.key, opts.scale),
        probeEveryMs: LOAD_PROBE_EVERY_MS,
        baselineMs: PROBE_BASELINE_MS,
      },
      maxChunkSize: Math.max(opts.chunkSize, ...opts.sweepChunks),
    },
  });
}

/** The no-backfill window the budgets are multiples of: long enough to hold the load's own commit stalls. */
export const BUDGET_BASELINE_MS = 60_000;

/**
 * How long a budgeted run's probe measures its baseline (throttle.latency.baselineMs):
 * this machine's commit latency swings, and a 10-s baseline of the load's
 * transaction measured 8.3 ms in one run and 5.0 ms in the next.
 */
export const PROBE_BASELINE_MS = 30_000;

/**
 * A budgeted run's wall time less its probe's first baseline: the time it
 * spent backfilling (the workflow's and the probe's start count, as a fixed
 * setting's start does). The baseline lasts `throttle.latency.baselineMs` at
 * least; as progress showed it (`baselineMs` of the round, from the first
 * reading measuring it to the first past it) it can look shorter, for
 * progress hears the probe through the leases, late: 25.3-31.1 s for a 30-s
 * baseline on the loaded host of 2026-12-07. So the longer of the two.
 */
export function budgetWallMs(b: Pick<BudgetResults, 'probeBaselineMs'>, run: { fill: FillRun; baselineMs?: number }): number {
  return run.fill.wallMs - Math.max(run.baselineMs ?? 0, b.probeBaselineMs ?? 0);
}

/** 40 transactions a second: a fifth of the load's own 200, and 200 samples in a judging window. */
export const LOAD_PROBE_EVERY_MS = 25;

/**
 * The probe the budgeted runs give stagefill (`throttle.latency.probe`): the
 * load's own transaction, as pgbench's TPC-B-like script runs it (an account,
 * a teller and a branch updated, the account read, one commit), each row
 * picked at random and written with the value it holds, so the data does not
 * change (the history insert is left out for the same reason). So it waits
 * where the load waits: for the CPU once per statement, for the row locks the
 * backfill's chunks hold, and for the WAL flush behind their WAL at commit.
 * The default probe, one read-only lookup, saw only a share of the CPU wait:
 * it kept its budget while pgbench's p99 went to 2.95x; a one-statement write
 * had half the load's p99, so the same ratio was twice as strict.
 */
export function loadProbe(key: { from: number; to: number }, scale: number): string[] {
  const pick = (from: number, count: number) => `(SELECT ${from} + floor(random() * ${Math.max(1, count)})::int)`;
  const aid = pick(key.from, key.to - key.from);
  return [
    `UPDATE ${sql.TABLE} SET abalance = abalance WHERE ${sql.KEY} = ${aid}`,
    `SELECT abalance FROM ${sql.TABLE} WHERE ${sql.KEY} = ${aid}`,
    `UPDATE public.pgbench_tellers SET tbalance = tbalance WHERE tid = ${pick(1, 10 * scale)}`,
    `UPDATE public.pgbench_branches SET bbalance = bbalance WHERE bid = ${pick(1, scale)}`,
  ];
}

/** The round of a budget contender with the lowest load p99 (as the load table does). */
export function bestBudget(r: BudgetResults, ratio: number): BudgetRound | undefined {
  const b = r.budgets.find((x) => x.ratio === ratio);
  return b && b.rounds.length ? b.rounds.reduce((a, c) => (c.latency.p99 < a.latency.p99 ? c : a)) : undefined;
}

/** The fastest fixed setting whose load p99 stayed within `ratio` × the no-backfill p99. */
export function fastestWithin(r: BudgetResults, ratio: number): SweepPoint | undefined {
  const ok = r.sweep.filter((p) => p.latency.p99 <= ratio * r.baselineP99);
  return ok.length ? ok.reduce((a, b) => (b.fill.wallMs < a.fill.wallMs ? b : a)) : undefined;
}

/** The wall/p99 frontier of the sweep: from the fastest, each point with a lower p99 than every faster one. */
export function frontier(r: BudgetResults): SweepPoint[] {
  const sorted = [...r.sweep].sort((a, b) => a.fill.wallMs - b.fill.wallMs);
  const out: SweepPoint[] = [];
  for (const p of sorted) if (!out.length || p.latency.p99 < out[out.length - 1].latency.p99) out.push(p);
  return out;
}

/**
 * One budgeted backfill under the load, whose rate doubles (a second pgbench
 * at the same rate) once the backfill has written a quarter of its rows, or
 * `stepAfterMs` into the run if that comes first. (A step timed from an
 * estimate alone came as the run ended: the scale-50 run of 2026-12-02 had no
 * window after it.) The controller's view sampled
 * every 500 ms from the progress query, the load's p99 per window from
 * pgbench's logs.
 */
async function loadStep(
  target: PgTarget,
  opts: BenchOptions,
  deps: ContenderDeps,
  ratio: number,
  tag: number,
  stepAfterMs: number,
): Promise<LoadStepResult> {
  const c = budgetContender(deps, opts, ratio, stepAfterMs * 4);
  const loads: LoadRun[] = [];
  const launch = (label: string, seconds: number) => {
    const run = startLoad(target, {
      clients: opts.loadClients,
      rate: opts.loadRate,
      seconds,
      logPrefix: path.join(opts.stateDir, 'pgbench', `step-${label}`),
    });
    loads.push(run);
    return run;
  };
  const capS = Math.ceil((stepAfterMs * 8 + 120_000) / 1000);
  launch('base', capS);
  await sleep(2000);
  const t0 = Date.now();
  const samples: StepSample[] = [];
  let isDone = false;
  let stepAtMs: number | undefined;
  const step = () => {
    if (stepAtMs !== undefined) return;
    stepAtMs = Date.now() - t0;
    launch('doubled', capS);
  };
  const rows = deps.key.to - deps.key.from;
  const handle = deps.conn.client.workflow.getHandle(stagefillWorkflowId(c.id, tag));
  const sampling = (async () => {
    while (!isDone) {
      const p = (await handle.query(progressQuery).catch(() => undefined)) as BackfillProgress | undefined;
      if (p) {
        samples.push({
          t: Date.now() - t0,
          rowsProcessed: p.rowsProcessed,
          allowedRowsPerSecond: p.control?.hold ? 0 : p.control?.rowsPerSecond,
          probeP99Ms: p.control?.p99Ms,
          budgetP99Ms: p.control?.budgetP99Ms,
          hold: p.control?.hold,
          action: p.control?.action,
        });
        if (p.rowsProcessed >= rows / 4) step();
      }
      await sleep(500);
    }
  })();
  const stepTimer = setTimeout(step, stepAfterMs);
  try {
    await c.run(tag);
  } finally {
    clearTimeout(stepTimer);
    isDone = true;
  }
  await sampling;
  const wallMs = Date.now() - t0;
  await sleep(3000);
  for (const l of loads) l.stop();
  const txns: Transaction[] = (await Promise.all(loads.map((l) => l.done))).flatMap((o) => o.transactions);
  const windowsOf = (size: number): StepWindow[] =>
    perWindow(txns, t0, t0 + wallMs, size).map((w) => ({
      fromMs: w.fromMs - t0,
      p99: w.latency.p99,
      transactions: w.latency.transactions,
    }));
  return {
    ratio,
    baseRate: opts.loadRate,
    stepAtMs: stepAtMs ?? wallMs,
    wallMs,
    samples,
    windows: windowsOf(10_000),
    seconds: windowsOf(1000),
  };
}

/** The windows that count for the step's target: those starting 10 s or more after the step (the controller's time to react). */
export function windowsAfterStep(s: LoadStepResult): StepWindow[] {
  return s.windows.filter((w) => w.fromMs >= s.stepAtMs + 10_000 && w.transactions > 0);
}

/** An SVG of the load step: allowed and written rows/s (left axis), the load's p99 per second and its budget (right axis). */
export function stepSvg(s: LoadStepResult, baselineP99: number): string {
  const W = 900;
  const H = 460;
  const m = { l: 70, r: 70, t: 40, b: 90 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const tMax = Math.max(1000, s.wallMs);
  const written = s.samples.map((p, i) => {
    const prev = s.samples[Math.max(0, i - 2)];
    return { t: p.t, v: p.t > prev.t ? ((p.rowsProcessed - prev.rowsProcessed) * 1000) / (p.t - prev.t) : 0 };
  });
  const allowed = s.samples
    .filter((p) => p.allowedRowsPerSecond !== undefined && p.allowedRowsPerSecond >= 0)
    .map((p) => ({ t: p.t, v: p.allowedRowsPerSecond! }));
  const rateMax = Math.max(1, ...written.map((p) => p.v), ...allowed.map((p) => p.v)) * 1.1;
  const budget = s.ratio * baselineP99;
  const lat = s.seconds.filter((w) => Number.isFinite(w.p99)).map((w) => ({ t: w.fromMs + 500, v: w.p99 }));
  const lat10 = s.windows.filter((w) => Number.isFinite(w.p99)).map((w) => ({ t: w.fromMs + 5000, v: w.p99 }));
  const msMax = Math.max(budget * 1.5, ...lat.map((p) => p.v)) * 1.1;
  const X = (t: number) => m.l + (t / tMax) * pw;
  const YL = (v: number) => m.t + ph - (v / rateMax) * ph;
  const YR = (v: number) => m.t + ph - (Math.min(v, msMax) / msMax) * ph;
  const line = (pts: { t: number; v: number }[], y: (v: number) => number) =>
    pts.map((p, i) => `${i ? 'L' : 'M'}${X(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  const ticks = (n: number, max: number) => Array.from({ length: n + 1 }, (_, i) => (max * i) / n);
  const fmt = (v: number) => (v >= 1000 ? `${Math.round(v / 1000)}k` : v < 10 ? v.toFixed(1) : v.toFixed(0));
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">Load step under a ${s.ratio}× latency budget: pgbench -R ${s.baseRate} → ${2 * s.baseRate} at ${(s.stepAtMs / 1000).toFixed(0)} s</text>`,
  );
  for (const v of ticks(5, rateMax))
    parts.push(
      `<line x1="${m.l}" x2="${m.l + pw}" y1="${YL(v)}" y2="${YL(v)}" stroke="#eee"/><text x="${m.l - 6}" y="${YL(v) + 4}" text-anchor="end" fill="#1f77b4">${fmt(v)}</text>`,
    );
  for (const v of ticks(5, msMax)) parts.push(`<text x="${m.l + pw + 6}" y="${YR(v) + 4}" fill="#d62728">${fmt(v)}</text>`);
  for (const t of ticks(Math.min(10, Math.ceil(tMax / 5000)), tMax))
    parts.push(`<text x="${X(t)}" y="${m.t + ph + 18}" text-anchor="middle">${(t / 1000).toFixed(0)}</text>`);
  parts.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 36}" text-anchor="middle">seconds since the backfill started</text>`);
  parts.push(
    `<text x="16" y="${m.t + ph / 2}" transform="rotate(-90 16 ${m.t + ph / 2})" text-anchor="middle" fill="#1f77b4">rows/s</text>`,
  );
  parts.push(
    `<text x="${W - 14}" y="${m.t + ph / 2}" transform="rotate(90 ${W - 14} ${m.t + ph / 2})" text-anchor="middle" fill="#d62728">load latency ms (pgbench)</text>`,
  );
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  parts.push(
    `<line x1="${X(s.stepAtMs)}" x2="${X(s.stepAtMs)}" y1="${m.t}" y2="${m.t + ph}" stroke="#555" stroke-dasharray="4 3"/><text x="${X(s.stepAtMs) + 4}" y="${m.t + 14}" fill="#555">load ×2</text>`,
  );
  parts.push(
    `<line x1="${m.l}" x2="${m.l + pw}" y1="${YR(budget)}" y2="${YR(budget)}" stroke="#d62728" stroke-dasharray="6 4"/><text x="${m.l + pw - 4}" y="${YR(budget) - 4}" text-anchor="end" fill="#d62728">budget ${budget.toFixed(1)} ms</text>`,
  );
  if (allowed.length) parts.push(`<path d="${line(allowed, YL)}" fill="none" stroke="#aec7e8" stroke-width="2"/>`);
  if (written.length) parts.push(`<path d="${line(written, YL)}" fill="none" stroke="#1f77b4" stroke-width="2"/>`);
  if (lat.length) parts.push(`<path d="${line(lat, YR)}" fill="none" stroke="#ff9896" stroke-width="1"/>`);
  if (lat10.length) parts.push(`<path d="${line(lat10, YR)}" fill="none" stroke="#d62728" stroke-width="2.5"/>`);
  const legend = [
    ['#1f77b4', 'rows/s written'],
    ['#aec7e8', 'rows/s the controller allows'],
    ['#ff9896', 'load p99 per second'],
    ['#d62728', 'load p99 per 10 s window'],
  ];
  legend.forEach(([c, label], i) =>
    parts.push(
      `<line x1="${m.l + 10 + i * 200}" x2="${m.l + 30 + i * 200}" y1="${m.t + ph + 62}" y2="${m.t + ph + 62}" stroke="${c}" stroke-width="3"/><text x="${m.l + 34 + i * 200}" y="${m.t + ph + 66}">${label}</text>`,
    ),
  );
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
