/**
 * What the latency-budget part of the benchmark (bench/budget.ts) records: the
 * sweep of fixed settings, the budgeted rounds, the load step; and the
 * questions the report and the verdicts ask of them (the frontier, the
 * fastest setting within a budget, a budget's best round and its paired
 * verdict). Pure.
 */
import type { LatencySummary } from './pgbench';
import type { FillRun } from './contenders';
import type { RememberedSettings } from '../core/backfill/throttle-memory';
import { pairedFrontier, budgetVerdict } from './paired-windows';
import type { PairedRecord } from './paired-windows';

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
  for (const p of sorted) {
    const last = out[out.length - 1];
    if (!last || p.latency.p99 < last.latency.p99) out.push(p);
  }
  return out;
}
