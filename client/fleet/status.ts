import type { FleetProgress } from '../../core/fleet/progress';
import type { StagefillConnection } from '../connection';
import { getProgress } from '../operations';
import { fleetEtaSeconds, fleetEtaText } from '../../core/fleet/eta';

/** Rollout states in which a running target waits for someone or something (an approval, a held gate, a pause). */
const WAITING = new Set(['waiting_approval', 'held', 'paused']);

/** What the client adds to the fleet's `progress` answer (`status --json` prints it). */
export interface FleetView extends FleetProgress {
  /** Rows of the backfills the running targets run now (a completed target counts as a target, not as rows). */
  rows: { done: number; total: number; rowsPerSecond: number; targets: number };
  /** Seconds until the last wave ends (approvals between waves not counted); 0 once ended, null while it stands or before anything can be timed. */
  etaSeconds: number | null;
  /**
   * Running targets whose change is held (counted as `waiting`): an activity of it failing again and again and
   * retried (its database down or refusing: the cause is the last failure), or a rollout's held gate.
   */
  held: { target: string; wave: string; cause: string }[];
}

/** A running change's figures, as its `progress` query answers (a rollout's running backfills, or a backfill's own). */
interface ChangeFigures {
  state?: string;
  stateReason?: string | null;
  etaSeconds?: number | null;
  rowsProcessed?: number;
  rowsTotal?: number;
  rowsPerSecond?: number;
  backfills?: { workflowId?: string; rowsDone: number; rowsTotal: number; rowsPerSecond: number }[];
}

/**
 * Why a running change is held, from Temporal's description of it (and of its running backfills): the first pending
 * activity on its second attempt or later, with its last failure (e.g. the target's PostgreSQL refusing connections);
 * undefined while every activity runs on its first attempt.
 */
async function retriedCause(conn: StagefillConnection, workflowIds: string[]): Promise<string | undefined> {
  for (const id of workflowIds) {
    const d = await conn.client.workflow
      .getHandle(id)
      .describe()
      .catch(() => undefined);
    for (const a of d?.raw.pendingActivities ?? []) {
      const message = a.lastFailure?.message;
      if ((a.attempt ?? 0) >= 2 && message) return `${message} (${a.activityType?.name ?? 'an activity'}, attempt ${a.attempt})`;
    }
  }
  return undefined;
}

function rowsOf(cp: ChangeFigures): { done: number; total: number; rate: number } {
  if (cp.backfills)
    return cp.backfills.reduce((a, b) => ({ done: a.done + b.rowsDone, total: a.total + b.rowsTotal, rate: a.rate + b.rowsPerSecond }), {
      done: 0,
      total: 0,
      rate: 0,
    });
  return { done: cp.rowsProcessed ?? 0, total: cp.rowsTotal ?? 0, rate: cp.rowsPerSecond ?? 0 };
}

/** When each of the fleet's target workflows started and (if it did) closed, newest execution per target (a retry runs one again). */
async function targetTimes(conn: StagefillConnection, fleetName: string): Promise<Map<string, { start: number; close?: number }>> {
  const quote = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const out = new Map<string, { start: number; close?: number }>();
  let seen = 0;
  for await (const wf of conn.client.workflow.list({ query: `StagefillFleet = ${quote(fleetName)} AND StagefillKind = 'fleet-target'` })) {
    const before = out.get(wf.workflowId);
    if (!before || wf.startTime.getTime() > before.start)
      out.set(wf.workflowId, { start: wf.startTime.getTime(), ...(wf.closeTime ? { close: wf.closeTime.getTime() } : {}) });
    // enough to time a target; a fleet of thousands is not listed whole on every refresh
    if (++seen >= 2000) break;
  }
  return out;
}

/**
 * What the fleet's own query does not know, asked of its targets: whether a
 * running target's change waits (an approval, a held gate: moved from
 * `running` to `waiting` in its wave's counts), the rows its backfills move
 * now, and the fleet's ETA from how long targets took (one visibility list,
 * one query per running target: at most the wave's parallelism).
 */
export async function withTargetFigures(conn: StagefillConnection, p: FleetProgress): Promise<FleetView> {
  const running = (p.targets ?? []).filter((t) => t.state === 'running');
  const [figures, times] = await Promise.all([
    Promise.all(
      running.map(async (t) => {
        const cp = await getProgress<ChangeFigures>(conn, t.workflowId).catch(() => undefined);
        const ids = [t.workflowId, ...(cp?.backfills ?? []).flatMap((b) => (b.workflowId ? [b.workflowId] : []))];
        const retried = await retriedCause(conn, ids).catch(() => undefined);
        const cause = retried ?? (cp?.state === 'held' ? (cp.stateReason ?? 'held') : undefined);
        return { t, cp, cause };
      }),
    ),
    targetTimes(conn, p.name).catch(() => new Map<string, { start: number; close?: number }>()),
  ]);
  const rows = { done: 0, total: 0, rowsPerSecond: 0, targets: 0 };
  const held: FleetView['held'] = [];
  for (const { t, cp, cause } of figures) {
    if (cause !== undefined) held.push({ target: t.name, wave: t.wave, cause });
    if ((cp?.state !== undefined && WAITING.has(cp.state)) || cause !== undefined) {
      const w = p.waves.find((x) => x.name === t.wave);
      if (w) {
        w.counts.running--;
        w.counts.waiting++;
      }
    }
    if (!cp) continue;
    const r = rowsOf(cp);
    if (r.total > 0) {
      rows.done += r.done;
      rows.total += r.total;
      rows.rowsPerSecond += r.rate;
      rows.targets++;
    }
  }
  const now = Date.now();
  // a target's workflow id is the change's without `/change`
  const timeOf = (changeId: string) => times.get(changeId.replace(/\/change$/, ''));
  const completedSeconds = (p.targets ?? [])
    .filter((t) => t.state === 'completed')
    .map((t) => timeOf(t.workflowId))
    .filter((x): x is { start: number; close: number } => x?.close !== undefined)
    .map((x) => (x.close - x.start) / 1000);
  const etaSeconds = fleetEtaSeconds({
    state: p.state,
    waves: p.waves,
    currentWave: p.currentWave,
    running: figures.map(({ t, cp }) => ({
      elapsedSeconds: Math.max(0, (now - (timeOf(t.workflowId)?.start ?? now)) / 1000),
      etaSeconds: cp?.etaSeconds ?? null,
    })),
    completedSeconds,
  });
  return Object.assign(p, { rows, etaSeconds, held });
}

const pad = (s: string, n: number) => s.padEnd(n);

const fmtNum = (n: number) => n.toLocaleString('en-US');

/** One line for `watch`: the fleet's state, its wave, the targets done, the rows moving now and the ETA. */
export function formatFleetLine(p: FleetProgress & Partial<Pick<FleetView, 'rows' | 'etaSeconds' | 'held'>>): string {
  const wave = p.currentWave ? ` wave ${p.currentWave}` : '';
  const failed = p.failed.length ? ` failed: ${p.failed.map((f) => f.target).join(',')}` : '';
  const held = p.held?.length ? ` held: ${p.held.map((h) => h.target).join(',')}` : '';
  const rows = p.rows?.targets
    ? ` [rows ${fmtNum(p.rows.done)}/${fmtNum(p.rows.total)} on ${p.rows.targets} running, ${fmtNum(p.rows.rowsPerSecond)} rows/s]`
    : '';
  const eta = p.etaSeconds !== undefined && p.state !== 'completed' ? ` ${fleetEtaText(p.state, p.etaSeconds)}` : '';
  // before the fleet has read its targets it has none, and none of none is not 100%
  const percent = p.totalTargets || p.state === 'completed' ? p.percent : 0;
  return `${percent.toFixed(1).padStart(5)}% ${pad(p.state, 16)}${wave} targets ${p.completedTargets}/${p.totalTargets} completed${rows}${eta}${held}${failed}${p.lastError ? ` error: ${p.lastError}` : ''}`;
}

/** `stagefill status` of a fleet: per-wave counts, then the failed and skipped targets with their causes. */
export function formatFleetStatus(
  p: FleetProgress & Partial<Pick<FleetView, 'rows' | 'etaSeconds' | 'held'>> & { workflowStatus?: string },
): string {
  const lines = [formatFleetLine(p), `workflow: ${p.workflowStatus ?? '?'}`, `change: ${p.change.kind} ${p.change.name}`];
  if (p.rollbackReason) lines.push(`rollback: ${p.rollbackReason}`);
  lines.push('waves:');
  for (const w of p.waves) {
    const c = w.counts;
    lines.push(
      `  ${pad(w.state, 16)} ${pad(w.name, 14)} ${w.targets} targets, parallelism ${w.parallelism}: pending ${c.pending}, running ${c.running}, waiting ${c.waiting}, completed ${c.completed}, failed ${c.failed}, rolled back ${c.rolledBack}${c.skipped ? `, skipped ${c.skipped}` : ''}`,
    );
  }
  if (p.held?.length) {
    lines.push('held targets (waiting: retried until the cause clears):');
    for (const h of p.held) lines.push(`  ${h.target} (wave ${h.wave}): ${h.cause}`);
  }
  if (p.failed.length) {
    lines.push('failed targets:');
    for (const f of p.failed) lines.push(`  ${f.target} (wave ${f.wave}): ${f.cause}`);
  }
  if (p.skipped.length) {
    lines.push('skipped targets:');
    for (const s of p.skipped) lines.push(`  ${s.target}: ${s.reason}`);
  }
  const contracted = p.state === 'rolled_back' ? p.targets.filter((t) => t.state === 'completed') : [];
  if (contracted.length) lines.push(`completed before the rollback (not reversed): ${contracted.map((t) => t.name).join(', ')}`);
  return lines.join('\n');
}
