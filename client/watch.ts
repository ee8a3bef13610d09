import type { StagefillConnection } from './connection';
import { getProgress, describeRun } from './operations';
import type { ChildBackfillReport, StepView } from '../core/backfill/progress';
import { rolloutPercent } from '../core/backfill/progress';
import type { FleetProgress } from '../core/fleet/progress';
import { formatFleetLine, formatFleetStatus, withTargetFigures } from './fleet/status';

type AnyProgress = Record<string, unknown> & { workflowStatus?: string };

/** A progress field as text: a worker of another version may put an object where a string was (JSON, not "[object Object]"). */
const text = (v: unknown): string => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));

const fmtNum = (n: unknown) => (typeof n === 'number' ? n.toLocaleString('en-US') : '?');

export function formatEta(seconds: unknown): string {
  if (typeof seconds !== 'number') return '--';
  if (seconds < 60) return `${Math.round(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

function fraction(p: AnyProgress): number {
  if (p.kind === 'backfill') {
    const total = Number(p.rowsTotal) || 0;
    return total ? Math.min(1, Number(p.rowsProcessed) / total) : p.state === 'completed' ? 1 : 0;
  }
  const steps = (p.steps as StepView[] | undefined) ?? [];
  if (typeof p.percent !== 'number')
    return steps.length ? steps.filter((s) => ['completed', 'skipped'].includes(s.state)).length / steps.length : 0;
  // the backfill the watcher queried itself is fresher than its last report to the rollout
  const live = p.backfill as AnyProgress | undefined;
  const step = steps.find((s) => s.state === 'running' && s.backfillWorkflowId);
  if (!live || !step) return p.percent / 100;
  const reports = new Map<string, ChildBackfillReport>(
    ((p.backfills as ChildBackfillReport[] | undefined) ?? []).map((r) => [r.workflowId, r]),
  );
  reports.set(step.backfillWorkflowId!, {
    ...childReport(live),
    workflowId: step.backfillWorkflowId!,
  });
  return rolloutPercent(String(p.state), steps, reports).percent / 100;
}

/** A backfill's progress object in the shape of its report to a rollout. */
function childReport(bf: AnyProgress): ChildBackfillReport {
  return {
    workflowId: '',
    name: typeof bf.name === 'string' ? bf.name : '',
    state: String(bf.state),
    stateReason: (bf.stateReason as string | null | undefined) ?? null,
    rowsDone: Number(bf.rowsProcessed) || 0,
    rowsTotal: Number(bf.rowsTotal) || 0,
    rowsPerSecond: Number(bf.rowsPerSecond) || 0,
    etaSeconds: (bf.etaSeconds as number | null | undefined) ?? null,
    at: 0,
  };
}

/** The running backfill of a rollout: the one the watcher queried, else its last report. */
function innerBackfill(p: AnyProgress): AnyProgress | undefined {
  if (p.backfill) return p.backfill as AnyProgress;
  const r = ((p.backfills as ChildBackfillReport[] | undefined) ?? [])[0];
  return r && { ...r, rowsProcessed: r.rowsDone };
}

/** A state with its reason, when it has one: "backing_off (health check returned 30, over its max of 5: ...)". */
const withReason = (p: AnyProgress) => (p.stateReason ? `${text(p.state)} (${text(p.stateReason)})` : text(p.state));

/** Rate and ETA as a watcher saw rows move, for when the run itself has not measured one yet. */
export interface ObservedRate {
  rowsPerSecond: number;
  etaSeconds: number | null;
}

/** What stands in for the ETA while a run moves no rows: "ETA held", "ETA paused". */
const STANDING_ETA: Record<string, string> = {
  paused: 'paused',
  holding: 'held',
  held: 'held',
  backing_off: 'backing off',
  waiting_window: 'waiting for its window',
  waiting_approval: 'waiting for approval',
};

/** "ETA 12s", or while it stands "ETA paused" (a rate from before says nothing of when it goes on). */
export function etaText(state: unknown, seconds: unknown): string {
  const standing = STANDING_ETA[String(state)];
  return `ETA ${standing ?? formatEta(seconds)}`;
}

function rateOf(bf: AnyProgress, observed?: ObservedRate): ObservedRate {
  // standing: nothing moves now, whatever the rows moved before
  if (STANDING_ETA[String(bf.state)]) return { rowsPerSecond: 0, etaSeconds: null };
  const own = Number(bf.rowsPerSecond) || 0;
  if (own > 0 || !observed) return { rowsPerSecond: own, etaSeconds: (bf.etaSeconds as number | null) ?? null };
  return observed;
}

/** One line: what a person wants at a glance. */
export function formatProgressLine(p: AnyProgress, observed?: ObservedRate): string {
  if (p.kind === 'fleet') return formatFleetLine(p as unknown as FleetProgress);
  const pct = `${(fraction(p) * 100).toFixed(1).padStart(5)}%`;
  if (p.kind === 'backfill') {
    const r = p.state === 'completed' ? { rowsPerSecond: Number(p.rowsPerSecond) || 0, etaSeconds: 0 } : rateOf(p, observed);
    const control = p.control && p.state !== 'completed' ? ` | ${formatControl(p.control as ControlView)}` : '';
    // the controller's clause says why it holds; any other reason (health check, window, pause) goes at the end
    const why = p.stateReason && !(p.state === 'holding' && control) ? ` | ${text(p.stateReason)}` : '';
    return `${pct} ${String(p.state).padEnd(14)} rows ${fmtNum(p.rowsProcessed)}/${fmtNum(p.rowsTotal)} chunks ${fmtNum(p.chunksDone)}/${fmtNum(p.chunksTotal)} ${fmtNum(r.rowsPerSecond)} rows/s ${etaText(p.state, r.etaSeconds)}${control}${why}${p.lastError ? ` error: ${text(p.lastError)}` : ''}`;
  }
  const cur = p.currentStep ? ` step ${text(p.currentStep)}` : '';
  const bf = innerBackfill(p);
  const r = bf && rateOf(bf, observed);
  const bfState = bf && bf.state !== 'running' ? ` ${withReason(bf)}` : '';
  const inner =
    bf && r
      ? ` [backfill${bfState} ${fmtNum(bf.rowsProcessed)}/${fmtNum(bf.rowsTotal)} rows, ${fmtNum(r.rowsPerSecond)} rows/s, ${etaText(bf.state, r.etaSeconds)}]`
      : '';
  return `${pct} ${String(p.state).padEnd(14)}${cur}${inner}${p.lastError ? ` error: ${text(p.lastError)}` : ''}`;
}

/** The latency/replica-lag controller's decision as the progress query shows it. */
// Deliberately looser than core's ControlDecision (action a plain string, `at` optional): it reads what
// any worker version wrote into a run's progress, older and newer ones included.
interface ControlView {
  hold: boolean;
  action: string;
  reason: string;
  rowsPerSecond?: number;
  lanes: number;
  chunkSize: number;
  budgetP99Ms?: number;
  baselineP99Ms?: number;
  baselineAt?: number;
  baselineWindows?: number;
  trafficP99Ms?: number;
  budgetReference?: 'traffic' | 'probe';
  askedP99Ms?: number;
  at?: number;
  p50Ms?: number;
  p99Ms?: number;
  maxReplicaLagMs?: number;
  replicas?: { name: string; lagMs: number | null; state: string }[];
}

const fmtMs = (v: number | undefined) => (v === undefined ? '?' : v < 10 ? v.toFixed(2) : v.toFixed(0));

/** One clause: what the throttle measures against its budget, what it lets through, and what it does (or why it holds). */
export function formatControl(c: ControlView): string {
  const parts: string[] = [];
  if (c.budgetP99Ms !== undefined || c.p99Ms !== undefined)
    parts.push(`p99 ${fmtMs(c.p99Ms)}/${fmtMs(c.budgetP99Ms)} ms budget (p50 ${fmtMs(c.p50Ms)})`);
  // the budget's reference: how old it is (as of the decision) and how many off-windows refreshed it
  if (c.baselineP99Ms !== undefined && c.baselineAt !== undefined) {
    // both latencies: the probe's own baseline and, when pg_stat_statements gives it, the traffic's the budget is relative to
    const traffic = c.trafficP99Ms !== undefined ? ` (traffic ${fmtMs(c.trafficP99Ms)} ms)` : '';
    const raised = c.askedP99Ms !== undefined ? `, budget raised from ${fmtMs(c.askedP99Ms)} ms` : '';
    parts.push(
      `baseline ${fmtMs(c.baselineP99Ms)} ms${traffic}, ${Math.max(0, Math.round(((c.at ?? c.baselineAt) - c.baselineAt) / 1000))} s old, ${c.baselineWindows ?? 0} off-window${c.baselineWindows === 1 ? '' : 's'}${raised}`,
    );
  }
  const lagging = (c.replicas ?? []).map((r) => (r.lagMs === null ? `${r.name} missing` : `${r.name} lag ${fmtNum(r.lagMs)} ms`));
  if (c.maxReplicaLagMs !== undefined)
    parts.push(`${lagging.length ? lagging.join(', ') : 'no replica'} (max ${fmtNum(c.maxReplicaLagMs)} ms)`);
  if (c.hold) return `${parts.join(', ')}${parts.length ? ': ' : ''}HELD: ${c.reason}`;
  const rate = c.rowsPerSecond === undefined ? 'no rate limit' : `${fmtNum(c.rowsPerSecond)} rows/s allowed`;
  parts.push(`${rate} on ${c.lanes} lane${c.lanes === 1 ? '' : 's'} of ${fmtNum(c.chunkSize)}-row chunks`);
  return `${parts.join(', ')}: ${c.action}`;
}

/** Rows per second over the last ~10s of samples, and the time left at that pace. */
export class RateTracker {
  private samples: { t: number; rows: number }[] = [];

  observe(p: AnyProgress, t = Date.now()): ObservedRate | undefined {
    const bf = (p.kind === 'backfill' ? p : (p.backfill as AnyProgress | undefined)) ?? undefined;
    if (!bf || typeof bf.rowsProcessed !== 'number') return undefined;
    const rows = bf.rowsProcessed;
    // a new backfill step (or generation) starts counting again from its own zero
    const last = this.samples.at(-1);
    if (last && rows < last.rows) this.samples = [];
    this.samples.push({ t, rows });
    while (this.samples.length > 2 && t - (this.samples[0]?.t ?? t) > 10_000) this.samples.shift();
    const first = this.samples[0];
    if (!first || t - first.t < 500) return undefined;
    const rate = ((rows - first.rows) * 1000) / (t - first.t);
    const remaining = Math.max(0, (Number(bf.rowsTotal) || 0) - rows);
    return { rowsPerSecond: Math.round(rate), etaSeconds: rate > 0 ? Math.ceil(remaining / rate) : null };
  }
}

export function formatStatus(p: AnyProgress): string {
  if (p.kind === 'fleet') return formatFleetStatus(p as unknown as FleetProgress);
  const lines = [formatProgressLine(p), `workflow: ${p.workflowStatus ?? '?'}`];
  if (p.stateReason) lines.push(`state: ${withReason(p)}`);
  if (p.kind === 'rollout' && typeof p.percent === 'number')
    lines.push(`progress: ${p.percent.toFixed(1)}%, ${etaText(p.state, p.etaSeconds)}`);
  const w = p.rollbackWindow as { step: string; endsAt: string } | undefined;
  if (w) lines.push(`rollback window: ends ${w.endsAt} (step ${w.step} waits for it; \`rollback\` reverts until then)`);
  if (p.lastRecoveredError) lines.push(`recovered from: ${text(p.lastRecoveredError)}`);
  const c = p.control as ControlView | undefined;
  if (c) lines.push(`throttle: ${c.action}${c.hold ? ' (held)' : ''}: ${c.reason}`);
  for (const s of (p.steps as { id: string; kind: string; state: string; table?: string }[] | undefined) ?? []) {
    lines.push(`  ${s.state.padEnd(12)} ${s.id} (${s.kind}${s.table ? ` on ${s.table}` : ''})`);
  }
  return lines.join('\n');
}

function bar(f: number, width = 30): string {
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`;
}

/** A rollout step that is backfilling runs as its own workflow: its rows, rate and ETA are the rollout's too. */
async function runningBackfill(conn: StagefillConnection, p: AnyProgress): Promise<AnyProgress | undefined> {
  const steps = (p.steps as { state: string; backfillWorkflowId?: string }[] | undefined) ?? [];
  const step = steps.find((s) => s.state === 'running' && s.backfillWorkflowId);
  if (!step) return undefined;
  return await getProgress<AnyProgress>(conn, step.backfillWorkflowId!).catch(() => undefined);
}

const SUCCESS_STATES = new Set(['completed', 'window_closed']);

export interface WatchOptions {
  /** Redraw one line in place (a TTY). */
  bar: boolean;
  everyMs?: number;
  /** JSON Lines: each changed progress object, then `{workflowId, state, workflowStatus, exitCode}` at the end. */
  json?: boolean;
  /** Where the lines go (stdout; stderr when a caller keeps stdout for its own JSON). */
  out?: NodeJS.WritableStream;
}

/**
 * Follows a run until it closes. On a TTY one line redraws in place; otherwise
 * a line is printed whenever it changes (logs, CI, tests). Returns the exit code.
 */
export async function watchRun(conn: StagefillConnection, workflowId: string, opts: WatchOptions = { bar: true }): Promise<number> {
  const out = opts.out ?? process.stdout;
  const isBar = opts.bar && !opts.json;
  let last = '';
  const tracker = new RateTracker();
  for (;;) {
    const p = (await getProgress<AnyProgress>(conn, workflowId).catch(() => undefined)) as AnyProgress | undefined;
    const status = p?.workflowStatus ?? (await describeRun(conn, workflowId)).status.name;
    if (p?.kind === 'rollout' && !p.backfill) p.backfill = await runningBackfill(conn, p);
    if (p?.kind === 'fleet') await withTargetFigures(conn, p as unknown as FleetProgress);
    if (p) {
      const line = opts.json ? JSON.stringify(p) : formatProgressLine(p, tracker.observe(p));
      if (isBar) out.write(`\r${bar(fraction(p))} ${line}\x1b[K`);
      else if (line !== last) out.write(line + '\n');
      last = line;
    }
    if (status !== 'RUNNING') {
      if (isBar) out.write('\n');
      const state = text(p?.state ?? status.toLowerCase());
      const exitCode = status === 'COMPLETED' && SUCCESS_STATES.has(state) ? 0 : 1;
      out.write(
        opts.json
          ? JSON.stringify({ workflowId, state, workflowStatus: status, exitCode }) + '\n'
          : `${workflowId}: ${state} (${status})\n`,
      );
      return exitCode;
    }
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 1000));
  }
}
