/**
 * A fleet's ETA, as the client estimates it from its targets: the current
 * wave's running targets finish at their own pace, its pending ones and every
 * later wave's take the time a target took so far, `parallelism` at a time.
 * Pure; client/fleet/status.ts gathers the figures.
 */
import type { FleetWaveProgress, FleetState } from './progress';

export interface RunningTarget {
  /** Seconds since the target started. */
  elapsedSeconds: number;
  /** Its change's own ETA (a running backfill's), when it has one. */
  etaSeconds: number | null;
}

export interface FleetEtaInput {
  state: FleetState;
  waves: Pick<FleetWaveProgress, 'name' | 'state' | 'parallelism' | 'counts'>[];
  currentWave: string | null;
  running: RunningTarget[];
  /** How long each completed target took, in seconds. */
  completedSeconds: number[];
}

/** States in which nothing moves until someone acts: no ETA. */
const STANDING: ReadonlySet<FleetState> = new Set(['paused', 'waiting_approval', 'halted']);
const ENDED: ReadonlySet<FleetState> = new Set(['completed', 'window_closed', 'rolled_back', 'refused']);

/** How long one target takes: the mean of the completed ones, else the longest running one's elapsed plus its ETA. */
export function secondsPerTarget(completed: number[], running: RunningTarget[]): number | null {
  if (completed.length) return completed.reduce((a, b) => a + b, 0) / completed.length;
  const known = running.filter((r) => r.etaSeconds !== null).map((r) => r.elapsedSeconds + r.etaSeconds!);
  return known.length ? Math.max(...known) : null;
}

/** Seconds until the fleet's last wave ends (approvals between waves not counted); 0 when it has ended, null when unknown or standing. */
export function fleetEtaSeconds(input: FleetEtaInput): number | null {
  if (ENDED.has(input.state)) return 0;
  if (STANDING.has(input.state) || input.state === 'rolling_back') return null;
  const per = secondsPerTarget(input.completedSeconds, input.running);
  if (per === null) return null;
  const from = Math.max(
    0,
    input.waves.findIndex((w) => w.name === input.currentWave),
  );
  let total = 0;
  input.waves.slice(from).forEach((w, i) => {
    const slots = Math.max(1, w.parallelism);
    if (i === 0) {
      // the running targets end at their own pace; the pending ones take a slot each as one frees
      const left = input.running.map((r) => r.etaSeconds ?? Math.max(0, per - r.elapsedSeconds));
      total += (left.length ? Math.max(...left) : 0) + Math.ceil(w.counts.pending / slots) * per;
    } else {
      total += Math.ceil((w.counts.pending + w.counts.running + w.counts.waiting) / slots) * per;
    }
  });
  return Math.round(total);
}

/** "ETA 3m20s"; while the fleet stands, what it waits for; "ETA --" before anything can be timed. */
export function fleetEtaText(state: FleetState, seconds: number | null | undefined): string {
  if (state === 'paused') return 'ETA paused';
  if (state === 'waiting_approval') return 'ETA waiting for approval';
  if (state === 'halted') return 'ETA halted';
  if (seconds === null || seconds === undefined) return 'ETA --';
  const s = Math.round(seconds);
  if (s < 60) return `ETA ${s}s`;
  if (s < 3600) return `ETA ${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `ETA ${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
