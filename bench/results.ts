import type { FillRun } from './contenders';
import type { LatencySummary } from './pgbench';
import type { BenchOptions } from './options';
import type { BudgetResults } from './budget-results';
import { bestBudget, fastestWithin, budgetWallMs, budgetPairedVerdict } from './budget-results';
import { windowsAfterStep } from './load-step';
import { PAIRED_MIN_SHARE } from './paired-windows';
import { itemAt } from '../core/common/checked';

/**
 * What a benchmark run records (results.json) and the figures and verdicts
 * derived from it; bench/report.ts writes them as Markdown.
 */

export interface AloneResult {
  id: string;
  title: string;
  runs: FillRun[];
  /** Wall time of its unmeasured round 0 (`--warmup full`), ms. */
  warmMs?: number;
}

export interface LoadRound {
  round: number;
  fill?: FillRun;
  latency: LatencySummary;
  otherCores: number;
}

export interface LoadResult {
  id: string;
  title: string;
  rounds: LoadRound[];
}

export interface TriggerRound {
  round: number;
  withTrigger: boolean;
  tps: number;
  latency: LatencySummary;
  otherCores: number;
}

export interface ScalePoint {
  scale: number;
  rows: number;
  singleMs: number;
  stagefill: FillRun;
}

/** One key table (bench/keys.ts): the single UPDATE against stagefill's defaults, alone, best of the rounds. */
export interface KeyTableResult {
  id: string;
  title: string;
  rows: number;
  single: FillRun[];
  stagefill: FillRun[];
}

/** The options a report states beside its figures (the budget phase's only in results that ran it). */
export const REPORTED_SETTINGS = [
  'chunkSize',
  'parallelism',
  'bestChunkSize',
  'bestParallelism',
  'loadChunkSize',
  'loadParallelism',
  'loadRowsPerSecond',
  'loadClients',
  'loadRate',
  'triggerSeconds',
] as const;
export type ReportedSettings = Pick<BenchOptions, (typeof REPORTED_SETTINGS)[number]> &
  Partial<Pick<BenchOptions, 'budgets' | 'budgetParallelism' | 'flushAfterKb' | 'noisyCores'>>;

export interface BenchResults {
  startedAt: string;
  finishedAt?: string;
  command: string;
  machine: { nproc: number; memoryGb: number; cpu: string; kernel: string; node: string };
  postgres: { version: string; settings: Record<string, string> };
  scale: number;
  rows: number;
  rounds: number;
  settings: ReportedSettings;
  /** The first fill after pgbench -i, which must extend the table: reported, not compared. */
  warmupMs?: number;
  alone: AloneResult[];
  load: LoadResult[];
  trigger: TriggerRound[];
  triggerSource: string;
  scales: ScalePoint[];
  /** Absent in results written before the key tables existed. */
  keys?: KeyTableResult[];
  workerPeakRssMb: number;
  /** The latency-budget phase (sweep of fixed settings, budgeted runs, load step). */
  budget?: BudgetResults;
  /** `--resume`: later invocations that ran the phases this one had not finished. */
  resumed?: { at: string; command: string }[];
}

/** The fastest of a contender's runs. */
export const best = (runs: FillRun[]) => runs.reduce((a, b) => (b.wallMs < a.wallMs ? b : a));

export function bestAlone(results: BenchResults, id: string): FillRun | undefined {
  const a = results.alone.find((r) => r.id === id);
  return a && a.runs.length ? best(a.runs) : undefined;
}

/** The lower median; NaN for no values. */
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)] ?? Number.NaN;

/** The median of the no-backfill load's p99 over the rounds: one noisy baseline round must not flatter or damn a contender. */
export function baselineP99(results: BenchResults): number {
  const base = results.load.find((r) => r.id === 'none');
  return median((base?.rounds ?? []).map((r) => r.latency.p99));
}

/** The load round with the lowest p99, as a ratio to the no-backfill p99 (median of the rounds). */
export function bestLoadRound(results: BenchResults, id: string): (LoadRound & { p99Ratio: number }) | undefined {
  const l = results.load.find((r) => r.id === id);
  if (!l || !l.rounds.length) return undefined;
  const base = baselineP99(results);
  // the no-backfill row shows the round the ratios divide by
  const b =
    id === 'none' ? l.rounds.find((r) => r.latency.p99 === base)! : l.rounds.reduce((x, y) => (y.latency.p99 < x.latency.p99 ? y : x));
  return { ...b, p99Ratio: b.latency.p99 / base };
}

/** Lane time not spent in chunk SQL, per chunk: (wall × lanes − Σ chunk SQL) / chunks. */
export function overheadPerChunkMs(f: FillRun): number {
  return f.chunks ? (f.wallMs * f.lanes - f.chunkSqlMs) / f.chunks : Number.NaN;
}

export interface TargetVerdict {
  target: string;
  measured: string;
  limit: string;
  met: boolean;
  /** How far past the limit, as a fraction of it (0 when met). */
  missBy: number;
}

export function verdicts(r: BenchResults): TargetVerdict[] {
  // size: a table of cases, one per benchmark target: its measure, its limit and how far off
  const out: TargetVerdict[] = [];
  const single = bestAlone(r, 'single');
  const bare = bestAlone(r, 'bare');
  const sfDefault = bestAlone(r, 'stagefill');
  const sfBest = bestAlone(r, 'stagefill-best');
  const le = (target: string, value: number, limit: number, unit = '×') => {
    out.push({
      target,
      measured: `${value.toFixed(unit === '×' ? 2 : 0)}${unit}`,
      limit: `≤ ${limit.toFixed(unit === '×' ? 2 : 0)}${unit}`,
      met: value <= limit,
      missBy: value <= limit ? 0 : value / limit - 1,
    });
  };
  const ge = (target: string, value: number, limit: number) => {
    out.push({
      target,
      measured: `${value.toFixed(2)}×`,
      limit: `≥ ${limit.toFixed(2)}×`,
      met: value >= limit,
      missBy: value >= limit ? 0 : 1 - value / limit,
    });
  };
  if (single && sfDefault) le('stagefill defaults alone, wall vs single UPDATE', sfDefault.wallMs / single.wallMs, 0.6);
  if (single && sfBest) le('stagefill best settings alone, wall vs single UPDATE', sfBest.wallMs / single.wallMs, 0.5);
  if (bare && sfDefault)
    le('orchestration: stagefill defaults vs bare chunks (same chunk size and lanes)', sfDefault.wallMs / bare.wallMs, 1.02);
  const multiRound = r.alone.filter((a) => a.runs.length > 1);
  if (multiRound.length) {
    const firstSlowest = multiRound.filter((a) => itemAt(a.runs, 0, 'round').wallMs >= Math.max(...a.runs.map((x) => x.wallMs)));
    out.push({
      target: `alone: contenders whose round 1 was their slowest${firstSlowest.length ? ` (${firstSlowest.map((a) => a.id).join(', ')})` : ''}`,
      measured: `${firstSlowest.length} of ${multiRound.length}`,
      limit: '0',
      met: firstSlowest.length === 0,
      missBy: firstSlowest.length / multiRound.length,
    });
  }
  for (const id of ['stagefill', 'stagefill-load']) {
    const l = bestLoadRound(r, id);
    if (!l || !single) continue;
    const name = r.load.find((x) => x.id === id)!.title;
    le(`under load, ${name}: load p99 vs no-backfill p99`, l.p99Ratio, 1.5);
    le(`under load, ${name}: wall vs single UPDATE alone`, l.fill!.wallMs / single.wallMs, 1.25);
  }
  const trig = triggerSummary(r);
  if (trig) {
    ge('dual-write trigger: TPS with vs without', trig.tpsRatio, 0.75);
    le('dual-write trigger: p99 with vs without', trig.p99Ratio, 1.5);
  }
  const b = r.budget;
  for (const ratio of b?.budgets.map((x) => x.ratio) ?? []) {
    const run = bestBudget(b!, ratio);
    const unfinished = b!.budgets.find((x) => x.ratio === ratio)?.unfinished ?? [];
    if (unfinished.length)
      out.push({
        target: `budget ${ratio}×: every round finishes`,
        measured: `${unfinished.length} round(s) stopped at the deadline`,
        limit: '0',
        met: false,
        missBy: 1,
      });
    if (!run) continue;
    const v = budgetPairedVerdict(b!, ratio);
    if (!v.windows) {
      // an older results.json, without the paired windows: the single-baseline figures it had
      le(`budget ${ratio}×: load p99 vs no-backfill p99 (pgbench)`, run.latency.p99 / b!.baselineP99, ratio);
      const fixed = fastestWithin(b!, ratio);
      if (fixed)
        le(
          `budget ${ratio}×: wall after the probe's baseline vs the fastest fixed setting within it (${fixed.title})`,
          budgetWallMs(b!, run) / fixed.fill.wallMs,
          1.25,
        );
      else if (b!.sweep.length) {
        // nothing to compare with: no fixed setting kept this budget; stagefill keeping it is then the better result
        const kept = run.latency.p99 <= ratio * b!.baselineP99;
        out.push({
          target: `budget ${ratio}×: wall vs the fastest fixed setting within it (none of the ${b!.sweep.length} fixed settings kept it)`,
          measured: `${(budgetWallMs(b!, run) / 1000).toFixed(1)} s, ${kept ? 'within' : 'over'} the budget`,
          limit: '≤ 1.25× of a setting within it',
          met: kept,
          missBy: kept ? 0 : run.latency.p99 / (ratio * b!.baselineP99) - 1,
        });
      }
      continue;
    }
    const rounds = b!.budgets.find((x) => x.ratio === ratio)?.rounds.length ?? 0;
    const noisy = v.noisyWindows
      ? `; ${v.noisyWindows} with other load over the threshold, ${Number.isNaN(v.quietWithinShare) ? 'none quiet' : `quiet ones ${(v.quietWithinShare * 100).toFixed(0)}% within`}`
      : '';
    out.push({
      target: `budget ${ratio}×, paired: on-windows within ${ratio}× their neighbouring off-windows' p99 (${v.windows} windows, ${rounds} rounds${noisy})`,
      measured: `${(v.withinShare * 100).toFixed(0)}%`,
      limit: `≥ ${(PAIRED_MIN_SHARE * 100).toFixed(0)}%`,
      met: v.withinShare >= PAIRED_MIN_SHARE,
      missBy: v.withinShare >= PAIRED_MIN_SHARE ? 0 : 1 - v.withinShare / PAIRED_MIN_SHARE,
    });
    le(`budget ${ratio}×, paired: pooled on/off p99, worst round`, v.worstPooledRatio, ratio);
    if (v.frontier)
      le(
        `budget ${ratio}×: mean wall after the probe's baseline vs the fastest fixed setting that kept it by the same paired measure (${v.frontier.title})`,
        v.wallRatio,
        1.25,
      );
    else if (b!.sweep.length)
      out.push({
        target: `budget ${ratio}×: wall vs the fastest fixed setting that kept it by the paired measure (none of the ${b!.sweep.length} did)`,
        measured: `${v.isKept ? 'kept' : 'not kept'} by stagefill`,
        limit: '≤ 1.25× of a setting that kept it',
        met: v.isKept,
        missBy: v.isKept ? 0 : 1,
      });
  }
  if (b?.step) {
    const after = windowsAfterStep(b.step);
    if (after.length)
      le(
        `load step (budget ${b.step.ratio}×): worst 10 s window from 10 s after the step, p99 vs no-backfill p99`,
        Math.max(...after.map((w) => w.p99)) / b.baselineP99,
        b.step.ratio,
      );
  }
  if (Number.isFinite(r.workerPeakRssMb)) le('worker peak RSS', r.workerPeakRssMb, 300, ' MB');
  // history bounded: continue-as-new keeps every run of a chain under Temporal's 10,240-event warning, whatever the table's size
  const chains = [...r.alone.flatMap((a) => a.runs), ...r.scales.map((s) => s.stagefill)].flatMap((f) =>
    f.stagefill?.longestRunEvents !== undefined ? [{ rows: f.rows, longest: f.stagefill.longestRunEvents }] : [],
  );
  if (chains.length) {
    const worst = chains.reduce((a, c) => (c.longest > a.longest ? c : a));
    le(
      `history bounded: longest single workflow run, of ${chains.length} stagefill backfills up to ${Math.max(...chains.map((c) => c.rows)).toLocaleString('en-US')} rows`,
      worst.longest,
      10_240,
      ' events',
    );
  }
  return out;
}

export function triggerSummary(r: BenchResults) {
  const off = r.trigger.filter((t) => !t.withTrigger);
  const on = r.trigger.filter((t) => t.withTrigger);
  if (!off.length || !on.length) return undefined;
  // pair each round's two runs: the ratio within one round is what drifting background load cannot skew
  const pairs = off.flatMap((o) => {
    const w = on.find((x) => x.round === o.round);
    return w ? [{ o, w }] : [];
  });
  const tpsRatios = pairs.map((p) => p.w.tps / p.o.tps);
  const p99Ratios = pairs.map((p) => p.w.latency.p99 / p.o.latency.p99);
  return {
    pairs,
    tpsRatio: median(tpsRatios),
    p99Ratio: median(p99Ratios),
    tpsOff: Math.max(...off.map((t) => t.tps)),
    tpsOn: Math.max(...on.map((t) => t.tps)),
  };
}
