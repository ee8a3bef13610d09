import { seeded, derive, shuffle } from './rng';

/**
 * What a seed decides, as pure functions of it: the fault schedule (each fault's kind, planned offset, duration and
 * the worker it hits), the skew of the clock-skewed worker, and the campaign's run mix (the n-th run of each kind:
 * which key, approve or roll back, its live writer's seed). `npm run chaos -- --seed S` replays them; only how the
 * system under test takes them (how long a restart lasts, how many runs fit in the time) may differ.
 */

export type FaultKind =
  | 'worker-sigkill'
  | 'worker-sigstop'
  | 'temporal-sigkill'
  | 'postgres-sigkill'
  | 'pg-terminate-backend'
  | 'network-stall'
  | 'network-drop'
  | 'webhook-slow'
  | 'webhook-failing';
export const FAULT_KINDS: readonly FaultKind[] = [
  'worker-sigkill',
  'worker-sigstop',
  'temporal-sigkill',
  'postgres-sigkill',
  'pg-terminate-backend',
  'network-stall',
  'network-drop',
  'webhook-slow',
  'webhook-failing',
];

/** How often each kind is drawn, relative to the others. */
const WEIGHTS: Record<FaultKind, number> = {
  'worker-sigkill': 3,
  'worker-sigstop': 2,
  'temporal-sigkill': 1,
  'postgres-sigkill': 1,
  'pg-terminate-backend': 2,
  'network-stall': 2,
  'network-drop': 2,
  'webhook-slow': 1,
  'webhook-failing': 1,
};

/** Kinds that last no time (the moment itself): their planned duration is 0. */
const INSTANT: ReadonlySet<FaultKind> = new Set<FaultKind>(['pg-terminate-backend', 'network-drop']);

export interface FaultOptions {
  /** Gap between one fault's planned end and the next one's start, drawn in [lo, hi] ms. */
  gapMs: [number, number];
  /** How long a killed process stays down, a stopped worker stopped, a stall or webhook outage lasts, drawn in [lo, hi] ms. */
  downMs: [number, number];
}

export interface PlannedFault {
  kind: FaultKind;
  /** Seconds after the campaign's start the fault is planned for (it starts then, or as soon as the one before has ended). */
  at: number;
  downMs: number;
  /** The worker slot it hits (worker faults). */
  worker: number;
}

/** The fault schedule of `seed` over `minutes`: every kind once first, in a seeded order, then drawn by weight. */
export function faultSchedule(seed: number, minutes: number, workers: number, opts: FaultOptions): PlannedFault[] {
  const rng = seeded(derive(seed, 1));
  const deck = shuffle([...FAULT_KINDS], rng);
  const out: PlannedFault[] = [];
  let t = 0;
  for (;;) {
    t += rng.int(opts.gapMs[0], opts.gapMs[1]);
    if (t >= minutes * 60_000) return out;
    const kind = deck.shift() ?? rng.weighted(WEIGHTS);
    const drawn = rng.int(opts.downMs[0], opts.downMs[1]);
    const worker = rng.int(0, workers - 1);
    const downMs = INSTANT.has(kind) ? 0 : drawn;
    out.push({ kind, at: t / 1000, downMs, worker });
    t += downMs;
  }
}

/** The clock skew of worker 0 (ms, ahead when positive): 30 s to 5 min, ahead or behind, as the seed says. */
export function clockSkewMs(seed: number): number {
  const rng = seeded(derive(seed, 2));
  const ms = rng.int(30, 300) * 1000;
  return rng.chance(0.5) ? ms : -ms;
}

export type RunKind = 'backfill-int' | 'backfill-uuid' | 'backfill-composite' | 'rollout' | 'graph' | 'fleet';
export const RUN_KINDS: readonly RunKind[] = ['backfill-int', 'backfill-uuid', 'backfill-composite', 'rollout', 'graph', 'fleet'];

/** The campaign keeps so many runs of each class in flight; a backfill's key is drawn. */
export type RunClass = 'backfill' | 'rollout' | 'graph' | 'fleet';
export const RUN_CLASSES: readonly RunClass[] = ['backfill', 'rollout', 'graph', 'fleet'];
const BACKFILL_KINDS: readonly RunKind[] = ['backfill-int', 'backfill-uuid', 'backfill-composite'];

export interface PlannedRun {
  kind: RunKind;
  /** What the campaign answers at the run's approval (rollouts, graphs, fleets). */
  decision?: 'approve' | 'rollback';
  /** The seed of the run's live writer. */
  liveSeed: number;
}

/**
 * The `n`-th run (from 0) of class `cls` under `seed`. Approvals come in pairs (one approve and one rollback, in a
 * seeded order), so even a campaign of two rollouts goes both ways.
 */
export function plannedRun(seed: number, cls: RunClass, n: number): PlannedRun {
  const c = RUN_CLASSES.indexOf(cls);
  const rng = seeded(derive(seed, 3, c, n));
  const kind = cls === 'backfill' ? rng.pick(BACKFILL_KINDS) : cls;
  const liveSeed = rng.int(0, 2 ** 31);
  if (cls === 'backfill') return { kind, liveSeed };
  const first = seeded(derive(seed, 4, c, Math.floor(n / 2))).chance(0.5) ? 'approve' : 'rollback';
  const decision = n % 2 === 0 ? first : first === 'approve' ? 'rollback' : 'approve';
  return { kind, decision, liveSeed };
}
