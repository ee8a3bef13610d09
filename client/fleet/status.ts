import type { FleetProgress } from '../../core/fleet/progress';
import type { StagefillConnection } from '../connection';
import { getProgress } from '../operations';

/** Rollout states in which a running target waits for someone or something (an approval, a held gate, a pause). */
const WAITING = new Set(['waiting_approval', 'held', 'paused']);

/**
 * The fleet knows a target runs; whether its change waits, the change knows:
 * asks each running target's change (at most the waves' parallelism) and
 * moves the waiting ones from `running` to `waiting` in their wave's counts.
 */
export async function withWaitingTargets(conn: StagefillConnection, p: FleetProgress): Promise<FleetProgress> {
  const running = (p.targets ?? []).filter((t) => t.state === 'running');
  const states = await Promise.all(
    running.map(async (t) => {
      const cp = await getProgress<{ state?: string }>(conn, t.workflowId).catch(() => undefined);
      return { t, waits: cp?.state !== undefined && WAITING.has(cp.state), state: cp?.state };
    }),
  );
  for (const { t, waits } of states) {
    if (!waits) continue;
    const w = p.waves.find((x) => x.name === t.wave);
    if (w) {
      w.counts.running--;
      w.counts.waiting++;
    }
  }
  return p;
}

const pad = (s: string, n: number) => s.padEnd(n);

/** One line for `watch`: the fleet's state, its wave and the targets done. */
export function formatFleetLine(p: FleetProgress): string {
  const wave = p.currentWave ? ` wave ${p.currentWave}` : '';
  const failed = p.failed.length ? ` failed: ${p.failed.map((f) => f.target).join(',')}` : '';
  return `${p.percent.toFixed(1).padStart(5)}% ${pad(p.state, 16)}${wave} targets ${p.completedTargets}/${p.totalTargets} completed${failed}${p.lastError ? ` error: ${p.lastError}` : ''}`;
}

/** `stagefill status` of a fleet: per-wave counts, then the failed and skipped targets with their causes. */
export function formatFleetStatus(p: FleetProgress & { workflowStatus?: string }): string {
  const lines = [formatFleetLine(p), `workflow: ${p.workflowStatus ?? '?'}`, `change: ${p.change.kind} ${p.change.name}`];
  if (p.rollbackReason) lines.push(`rollback: ${p.rollbackReason}`);
  lines.push('waves:');
  for (const w of p.waves) {
    const c = w.counts;
    lines.push(
      `  ${pad(w.state, 16)} ${pad(w.name, 14)} ${w.targets} targets, parallelism ${w.parallelism}: pending ${c.pending}, running ${c.running}, waiting ${c.waiting}, completed ${c.completed}, failed ${c.failed}, rolled back ${c.rolledBack}${c.skipped ? `, skipped ${c.skipped}` : ''}`,
    );
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
