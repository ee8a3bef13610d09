import fs from 'node:fs';
import path from 'node:path';
import { sleep } from '../devstack';
import type { BackfillProgress } from '../workflows/definitions';
import { progressQuery } from '../workflows/definitions';
import type { PgTarget } from './pgbench';
import { summarize } from './pgbench';
import type { BenchOptions } from './options';
import type { Contender, ContenderDeps } from './contenders';
import { stagefillBackfill, stagefillWorkflowId, fmtK } from './contenders';
import { underLoad, UnderLoadFailure } from './under-load';
import type { UnderLoadResult } from './under-load';
import type { CpuSnapshot } from './machine';
import { cpuSnapshot, otherCores, stealCores, startCpuReadings } from './machine';
import { pairedVerdict, runWindows, withOtherLoad, offWindowsOf, budgetVerdict } from './paired-windows';
import type { PairedRecord, Span, HoldSample, CpuReading } from './paired-windows';
import { readThrottleMemory, rememberThrottle } from '../db/backfill/health';
import type { RememberedSettings } from '../core/backfill/throttle-memory';
import type { BudgetResults, BudgetRound, RoundContext } from './budget-results';
import { bestBudget, budgetWallMs, pairedFastestWithin } from './budget-results';
import { loadStep } from './load-step';
import * as sql from './sql';

/**
 * The latency-budget part of the benchmark: a sweep of fixed settings under
 * the load (chunk size × lanes × rate) gives the wall/p99 frontier; stagefill
 * with a budget of 1.5×, 2× and 3× the no-backfill p99 runs under the same
 * load and is held to the fastest fixed setting that kept the same budget;
 * and a load step (the load's rate doubles mid-run, bench/load-step.ts)
 * shows the controller giving way and taking back. What it records, and the
 * questions asked of it, are in bench/budget-results.ts.
 */

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

/** What the budget phase is given besides the target and options: the no-backfill p99, the alone run's pace, run tags. */
interface PhaseInput {
  baselineP99: () => Promise<{ p99: number; windowMs: number; windowP99s: number[] }>;
  fastestRowsPerSecond: number;
  estimateMs: number;
  nextTag: () => number;
}

export async function runBudgetPhase(
  target: PgTarget,
  opts: BenchOptions,
  deps: ContenderDeps,
  o: PhaseInput,
  out: BudgetResults,
): Promise<void> {
  const base = await o.baselineP99();
  out.baselineP99 = base.p99;
  out.baselineWindowMs = base.windowMs;
  out.baselineWindowP99s = base.windowP99s;
  out.probeBaselineMs = PROBE_BASELINE_MS;
  say(`budget: no-backfill p99 ${out.baselineP99.toFixed(2)} ms`);

  if (!opts.skip.has('sweep')) await runSweep(target, opts, deps, o, out);
  if (!opts.skip.has('budget')) await runBudgetRounds(target, opts, deps, o, out);
  if (!opts.skip.has('step')) {
    const ratio = opts.stepBudget;
    const best = bestBudget(out, ratio);
    const est = best ? budgetWallMs(out, best) : o.estimateMs * 3;
    await sql.settle(deps.pool);
    const stepAfterMs = PROBE_BASELINE_MS + Math.max(8000, 0.4 * est);
    const c = budgetContender(deps, opts, ratio, stepAfterMs * 4);
    out.step = await loadStep(target, opts, deps, c, ratio, o.nextTag(), stepAfterMs);
    say(
      `load step: budget ${ratio}×, rate doubled at ${(out.step.stepAtMs / 1000).toFixed(0)} s, wall ${(out.step.wallMs / 1000).toFixed(1)} s`,
    );
  }
}

/** The sweep: every fixed setting once under the load, with its paired record. */
async function runSweep(target: PgTarget, opts: BenchOptions, deps: ContenderDeps, o: PhaseInput, out: BudgetResults): Promise<void> {
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

/** The budgeted rounds: each budget once a round, alternating the order, round 1 cold and each later one from the memory its last left. */
async function runBudgetRounds(
  target: PgTarget,
  opts: BenchOptions,
  deps: ContenderDeps,
  o: PhaseInput,
  out: BudgetResults,
): Promise<void> {
  const contenders = opts.budgets.map((ratio) => ({ ratio, c: budgetContender(deps, opts, ratio, o.estimateMs) }));
  for (const b of contenders) out.budgets.push({ ratio: b.ratio, title: b.c.title, rounds: [] });
  // what each budget's last round left in the table's throttle memory: its next round starts from it, round 1 cold
  const remembered = new Map<number, RememberedSettings>();
  for (let round = 1; round <= opts.rounds; round++) {
    for (const b of round % 2 ? contenders : [...contenders].reverse()) await budgetRound(target, opts, deps, o, out, b, round, remembered);
  }
}

/**
 * One budgeted round under the load, from the memory the budget's last round left (`remembered`), its
 * off-windows followed from progress. A round that does not finish by its deadline is a result too: a budget
 * the controller cannot meet fast enough goes to the budget's `unfinished`.
 */
async function budgetRound(
  target: PgTarget,
  opts: BenchOptions,
  deps: ContenderDeps,
  o: PhaseInput,
  out: BudgetResults,
  b: { ratio: number; c: Contender },
  round: number,
  remembered: Map<number, RememberedSettings>,
): Promise<void> {
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
    return;
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
