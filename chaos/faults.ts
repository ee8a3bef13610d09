import { sleep } from '../devstack';
import { itemAt } from '../core/common/checked';
import type { ChaosStack } from './stack';
import { faultSchedule, type FaultKind, type FaultOptions, type PlannedFault } from './schedule';
import { persist } from './workload';
import * as sql from './sql';

/**
 * The fault scheduler: the seed's schedule (chaos/schedule.ts), one fault at a time at its planned offset — a worker SIGKILLed (and started again)
 * or SIGSTOPped (and continued), the Temporal dev server or PostgreSQL SIGKILLed (and started again on the same data
 * and port), stagefill's sessions ended with pg_terminate_backend, the workers' connections to PostgreSQL stalled
 * or dropped by the proxy between them, the webhook receiver slow or failing — each recorded with its time and how
 * long stagefill took to make progress again after it.
 */

export { FAULT_KINDS, type FaultKind, type FaultOptions } from './schedule';

export interface FaultRecord {
  kind: FaultKind;
  /** Seconds since the campaign began, when the fault hit. */
  at: number;
  /** When the schedule planned it (the same for the same seed; `at` is later when the fault before it overran). */
  plannedAt: number;
  /** What it hit (worker 1, 7 sessions, ...). */
  target: string;
  /** How long the process stayed down or stopped, in ms (0 for pg_terminate_backend). */
  downMs: number;
  /** From the end of the fault (restart, SIGCONT) to the next committed chunk or audit row, in ms; null: none within the bound. */
  recoveryMs: number | null;
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

export function startFaults(
  stack: ChaosStack,
  seed: number,
  minutes: number,
  opts: FaultOptions,
  t0: number,
  log: (m: string) => void,
): FaultScheduler {
  const schedule = faultSchedule(seed, minutes, stack.workers.length, opts);
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

  const inject = async (planned: PlannedFault): Promise<FaultRecord> => {
    const { kind, downMs, at: plannedAt } = planned;
    const at = (Date.now() - t0) / 1000;
    const slot = itemAt(stack.workers, planned.worker, 'worker');
    const done = (target: string, down = downMs): FaultRecord => ({ kind, at, plannedAt, target, downMs: down, recoveryMs: null });
    switch (kind) {
      case 'worker-sigkill':
        await stack.killWorker(slot);
        await sleep(downMs);
        await stack.spawnWorker(slot);
        return done(`worker ${slot.index}`);
      case 'worker-sigstop':
        stack.pauseWorker(slot);
        await sleep(downMs);
        stack.continueWorker(slot);
        return done(`worker ${slot.index}`);
      case 'temporal-sigkill':
        await stack.killTemporal();
        await sleep(downMs);
        await stack.restartTemporal();
        return done('temporal dev server');
      case 'postgres-sigkill':
        await stack.killPostgres();
        await sleep(downMs);
        await stack.restartPostgres();
        return done('postmaster and every backend');
      case 'pg-terminate-backend': {
        const n = await persist(() => sql.terminateWorkerSessions(stack.pool));
        return done(`${n} worker sessions`, 0);
      }
      case 'network-stall': {
        const n = await stack.proxy.stall(downMs);
        return done(`${n} worker connections to PostgreSQL`);
      }
      case 'network-drop': {
        const n = stack.proxy.drop();
        return done(`${n} worker connections to PostgreSQL`, 0);
      }
      case 'webhook-slow':
      case 'webhook-failing': {
        stack.webhook.mode = kind === 'webhook-slow' ? 'slow' : 'failing';
        await sleep(downMs);
        stack.webhook.mode = 'ok';
        return done('the webhook receiver');
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

  const loop = (async () => {
    for (const planned of schedule) {
      // at its planned offset, or (the fault before overran: a slow restart) a second after that one ended
      await pause(Math.max(1000, t0 + planned.at * 1000 - Date.now()));
      if (isStopping) break;
      try {
        const f = await inject(planned);
        faults.push(f);
        log(
          `fault ${faults.length}: ${f.kind} at ${f.at.toFixed(0)}s (planned ${f.plannedAt.toFixed(0)}s) on ${f.target}, down ${f.downMs} ms`,
        );
        recoveries.push(measureRecovery(f));
      } catch (err) {
        log(`fault ${planned.kind} could not be injected: ${(err as Error).message}`);
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
