import { sleep } from '../devstack';
import type { ChaosStack } from './stack';
import type { Rng } from './rng';
import { persist } from './workload';
import * as sql from './sql';

/**
 * The fault scheduler: from the seed, one fault at a time at random gaps — a worker SIGKILLed (and started again)
 * or SIGSTOPped (and continued), the Temporal dev server or PostgreSQL SIGKILLed (and started again on the same data
 * and port), stagefill's sessions ended with pg_terminate_backend, the workers' connections to PostgreSQL stalled
 * or dropped by the proxy between them, the webhook receiver slow or failing — each recorded with its time and how
 * long stagefill took to make progress again after it.
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

export interface FaultRecord {
  kind: FaultKind;
  /** Seconds since the campaign began, when the fault hit. */
  at: number;
  /** What it hit (worker 1, 7 sessions, ...). */
  target: string;
  /** How long the process stayed down or stopped, in ms (0 for pg_terminate_backend). */
  downMs: number;
  /** From the end of the fault (restart, SIGCONT) to the next committed chunk or audit row, in ms; null: none within the bound. */
  recoveryMs: number | null;
}

export interface FaultOptions {
  /** Gap between one fault's end and the next one's start, drawn in [lo, hi] ms. */
  gapMs: [number, number];
  /** How long a killed process stays down, or a stopped worker stopped, drawn in [lo, hi] ms. */
  downMs: [number, number];
}

/** How long to wait for progress after a fault before calling its recovery unseen. */
const RECOVERY_BOUND_MS = 180_000;

export interface FaultScheduler {
  faults: FaultRecord[];
  /** Stops drawing new faults and ends the one under way (restarts what it took down). */
  stop(): Promise<void>;
  /** Ends the recovery measurements still waiting for progress (after the runs settled: none will come). */
  finish(): Promise<void>;
}

export function startFaults(stack: ChaosStack, rng: Rng, opts: FaultOptions, t0: number, log: (m: string) => void): FaultScheduler {
  const faults: FaultRecord[] = [];
  const recoveries: Promise<void>[] = [];
  let isStopping = false;
  let isFinished = false;
  let wake: () => void = () => {};
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const inject = async (kind: FaultKind): Promise<FaultRecord> => {
    const at = (Date.now() - t0) / 1000;
    const downMs = rng.int(opts.downMs[0], opts.downMs[1]);
    const slot = rng.pick(stack.workers);
    switch (kind) {
      case 'worker-sigkill':
        await stack.killWorker(slot);
        await sleep(downMs);
        await stack.spawnWorker(slot);
        return { kind, at, target: `worker ${slot.index}`, downMs, recoveryMs: null };
      case 'worker-sigstop':
        stack.pauseWorker(slot);
        await sleep(downMs);
        stack.continueWorker(slot);
        return { kind, at, target: `worker ${slot.index}`, downMs, recoveryMs: null };
      case 'temporal-sigkill':
        await stack.killTemporal();
        await sleep(downMs);
        await stack.restartTemporal();
        return { kind, at, target: 'temporal dev server', downMs, recoveryMs: null };
      case 'postgres-sigkill':
        await stack.killPostgres();
        await sleep(downMs);
        await stack.restartPostgres();
        return { kind, at, target: 'postmaster and every backend', downMs, recoveryMs: null };
      case 'pg-terminate-backend': {
        const n = await persist(() => sql.terminateWorkerSessions(stack.pool));
        return { kind, at, target: `${n} worker sessions`, downMs: 0, recoveryMs: null };
      }
      case 'network-stall': {
        const n = await stack.proxy.stall(downMs);
        return { kind, at, target: `${n} worker connections to PostgreSQL`, downMs, recoveryMs: null };
      }
      case 'network-drop': {
        const n = stack.proxy.drop();
        return { kind, at, target: `${n} worker connections to PostgreSQL`, downMs: 0, recoveryMs: null };
      }
      case 'webhook-slow':
      case 'webhook-failing': {
        stack.webhook.mode = kind === 'webhook-slow' ? 'slow' : 'failing';
        await sleep(downMs);
        stack.webhook.mode = 'ok';
        return { kind, at, target: 'the webhook receiver', downMs, recoveryMs: null };
      }
    }
  };

  const measureRecovery = async (f: FaultRecord): Promise<void> => {
    const from = Date.now();
    let mark: number | undefined;
    while (!isFinished && Date.now() - from < RECOVERY_BOUND_MS) {
      const now = await sql.progressMark(stack.pool).catch(() => undefined);
      if (now !== undefined && mark !== undefined && now > mark) {
        f.recoveryMs = Date.now() - from;
        return;
      }
      mark ??= now;
      await sleep(250);
    }
  };

  // every kind once first, in a seeded order, so even a short campaign meets each; then drawn by weight
  const deck = [...FAULT_KINDS].sort(() => rng.next() - 0.5);
  const loop = (async () => {
    while (!isStopping) {
      await pause(rng.int(opts.gapMs[0], opts.gapMs[1]));
      if (isStopping) break;
      const kind = deck.shift() ?? rng.weighted(WEIGHTS);
      try {
        const f = await inject(kind);
        faults.push(f);
        log(`fault ${faults.length}: ${kind} at ${f.at.toFixed(0)}s on ${f.target}, down ${f.downMs} ms`);
        recoveries.push(measureRecovery(f));
      } catch (err) {
        log(`fault ${kind} could not be injected: ${(err as Error).message}`);
      }
    }
  })();

  return {
    faults,
    async stop() {
      isStopping = true;
      wake();
      await loop;
    },
    async finish() {
      isFinished = true;
      await Promise.all(recoveries);
    },
  };
}
