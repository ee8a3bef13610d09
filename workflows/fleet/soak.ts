/**
 * A wave's soak, one round: after the wave's targets completed, the wave's
 * checks (a rollout's soak checks, bounds only) on each of them. Each
 * target's round runs on the target's own queue, `<queue>@<target>`, where
 * only a worker holding its connection polls, as a target's change sends its
 * database activities there (workflows/activity-route.ts). Deterministic.
 */
import { proxyActivities, isCancellation } from '@temporalio/workflow';
import type { FleetSoakActivities } from '../../activities/fleet/soak';
import type { CheckResult } from '../../core/rollout/checks';
import type { WaveSoak } from '../../core/fleet/waves';
import { targetQueue } from '../../core/fleet/ids';
import { causeMessage } from '../failure-cause';

/** Where a wave's soak stands (carried across continue-as-new): its end, the next round's time, rounds so far. */
export interface WaveSoakState {
  wave: number;
  until: number;
  nextAt?: number;
  round: number;
}

export interface SoakBreach {
  target: string;
  cause: string;
}

export interface SoakRoundInput {
  baseQueue: string;
  fleet: string;
  wave: string;
  table: string;
  soak: WaveSoak;
  round: number;
  targets: string[];
  /** Targets checked at once (the wave's parallelism). */
  parallelism: number;
}

// the retry policy of a rollout's checks (workflows/rollout/activities.ts): a target that cannot be checked breaches
const checksOn = (queue: string) =>
  proxyActivities<FleetSoakActivities>({
    taskQueue: queue,
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: '15 seconds',
    retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10 },
  });

const describeFailed = (failed: CheckResult[]) =>
  failed.map((f) => `check "${f.name}" got ${f.value ?? f.error ?? 'nothing'}, expected ${f.expected}`).join('; ');

/** One round on every target, `parallelism` at a time: the targets that breached, in name order, with what they got. */
export async function soakRound(i: SoakRoundInput): Promise<SoakBreach[]> {
  const breaches: SoakBreach[] = [];
  const left = [...i.targets];
  const lane = async () => {
    for (let target = left.shift(); target !== undefined; target = left.shift()) {
      const where = `soak of wave "${i.wave}", round ${i.round}`;
      try {
        const results = await checksOn(targetQueue(i.baseQueue, target)).runWaveChecks({
          fleet: i.fleet,
          wave: i.wave,
          target,
          table: i.table,
          checks: i.soak.checks,
          round: i.round,
        });
        const failed = results.filter((r) => !r.ok);
        if (failed.length) breaches.push({ target, cause: `${where}: ${describeFailed(failed)} (its change completed and stays)` });
      } catch (err) {
        if (isCancellation(err)) throw err;
        breaches.push({ target, cause: `${where}: its checks could not run: ${causeMessage(err)}` });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(i.parallelism, i.targets.length)) }, lane));
  return breaches.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
}
