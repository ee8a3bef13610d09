import type { StagefillConnection } from './connection';
import { getProgress, describeRun } from './operations';

type AnyProgress = Record<string, unknown> & { workflowStatus?: string };

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
  const steps = (p.steps as { state: string }[] | undefined) ?? [];
  return steps.length ? steps.filter((s) => ['completed', 'skipped'].includes(s.state)).length / steps.length : 0;
}

/** One line: what a person wants at a glance. */
export function formatProgressLine(p: AnyProgress): string {
  const pct = `${(fraction(p) * 100).toFixed(1).padStart(5)}%`;
  if (p.kind === 'backfill') {
    return `${pct} ${String(p.state).padEnd(14)} rows ${fmtNum(p.rowsProcessed)}/${fmtNum(p.rowsTotal)} chunks ${fmtNum(p.chunksDone)}/${fmtNum(p.chunksTotal)} ${fmtNum(p.rowsPerSecond)} rows/s ETA ${formatEta(p.etaSeconds)}${p.lastError ? ` error: ${p.lastError}` : ''}`;
  }
  const cur = p.currentStep ? ` step ${String(p.currentStep)}` : '';
  const bf = p.backfill as AnyProgress | undefined;
  const inner = bf ? ` [backfill ${fmtNum(bf.rowsProcessed)}/${fmtNum(bf.rowsTotal)} rows, ${fmtNum(bf.rowsPerSecond)} rows/s, ETA ${formatEta(bf.etaSeconds)}]` : '';
  return `${pct} ${String(p.state).padEnd(14)}${cur}${inner}${p.lastError ? ` error: ${p.lastError}` : ''}`;
}

export function formatStatus(p: AnyProgress): string {
  const lines = [formatProgressLine(p), `workflow: ${p.workflowStatus ?? '?'}`];
  for (const s of (p.steps as { id: string; kind: string; state: string; table?: string }[] | undefined) ?? []) {
    lines.push(`  ${s.state.padEnd(12)} ${s.id} (${s.kind}${s.table ? ` on ${s.table}` : ''})`);
  }
  return lines.join('\n');
}

function bar(f: number, width = 30): string {
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`;
}

const SUCCESS_STATES = new Set(['completed', 'window_closed']);

/**
 * Follows a run until it closes. On a TTY one line redraws in place; otherwise
 * a line is printed whenever it changes (logs, CI, tests). Returns the exit code.
 */
export async function watchRun(conn: StagefillConnection, workflowId: string, opts: { bar: boolean; everyMs?: number } = { bar: true }): Promise<number> {
  let last = '';
  for (;;) {
    const p = (await getProgress<AnyProgress>(conn, workflowId).catch(() => undefined)) as AnyProgress | undefined;
    const status = p?.workflowStatus ?? (await describeRun(conn, workflowId)).status.name;
    if (p) {
      const line = formatProgressLine(p);
      if (opts.bar) process.stdout.write(`\r${bar(fraction(p))} ${line}\x1b[K`);
      else if (line !== last) process.stdout.write(line + '\n');
      last = line;
    }
    if (status !== 'RUNNING') {
      if (opts.bar) process.stdout.write('\n');
      const state = String(p?.state ?? status.toLowerCase());
      process.stdout.write(`${workflowId}: ${state} (${status})\n`);
      return status === 'COMPLETED' && SUCCESS_STATES.has(state) ? 0 : 1;
    }
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 1000));
  }
}
