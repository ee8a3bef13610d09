/**
 * The workflow's side of the latency/replica-lag throttle: the probe
 * activity runs beside the lanes of a controlled round (one activity for the
 * round, not one per decision: its per-second loop stays out of history),
 * and starts again when a throttle update changes what it steers by.
 */
import { isCancellation, ActivityCancellationType, CancellationScope } from '@temporalio/workflow';
import { proxyRoutedActivities } from '../activity-route';
import type { ProbeActivities, ProbeInput } from '../../activities/backfill/probe';
import type { ThrottleSettings } from '../../core/backfill/throttle';
import { isControlled } from '../../core/backfill/throttle';
import type { BackfillRun } from './run';

const probeActivity = proxyRoutedActivities<ProbeActivities>({
  startToCloseTimeout: '30 minutes',
  // the probe beats about twice a second
  heartbeatTimeout: '10 seconds',
  // wait for it to stop, so two probes never write one control row at once
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s' },
});

/** A probe returns after this long and the next one starts: no activity lives for days. */
const PROBE_RUN_MS = 10 * 60_000;

/** What the probe steers by: a change restarts it with the new settings. */
export function probeSettingsKey(t: ThrottleSettings): string {
  return JSON.stringify([
    t.latency ?? null,
    t.maxReplicaLagMs ?? null,
    t.onReplicaMissing ?? null,
    t.parallelism,
    t.maxRowsPerSecond ?? null,
    t.minChunkSize,
    t.maxChunkSize,
  ]);
}

function probeInput(run: BackfillRun): ProbeInput {
  const p = run.c.prepared;
  return {
    backfillId: p.backfillId,
    generation: p.generation,
    name: run.spec.name,
    table: run.table,
    key: run.spec.key,
    keyType: p.keyType,
    range: p.range,
    throttle: run.c.throttle,
    maxRunMs: PROBE_RUN_MS,
  };
}

/** Runs probes until `isOver`; a probe that fails for good fails the round through `fail`. */
export async function runProbes(run: BackfillRun, isOver: () => boolean, fail: (err: unknown) => void): Promise<void> {
  while (!isOver() && isControlled(run.c.throttle) && !CancellationScope.current().consideredCancelled) {
    const scope = new CancellationScope();
    run.probe = scope;
    try {
      await scope.run(() => probeActivity.runThrottleProbe(probeInput(run)));
    } catch (err) {
      if (!isCancellation(err)) {
        fail(err);
        return;
      }
    } finally {
      run.probe = undefined;
    }
  }
}

/** After a throttle update: restart the probe (new budget) or the round (controlled or not changed). */
export function afterThrottleChange(run: BackfillRun, before: ThrottleSettings): void {
  const after = run.c.throttle;
  if (isControlled(before) !== isControlled(after)) {
    if (run.lanes) {
      run.restartRound = true;
      run.lanes.cancel(); // leases stop after their chunk; the next round follows the new mode
    }
    return;
  }
  if (isControlled(after) && probeSettingsKey(before) !== probeSettingsKey(after)) run.probe?.cancel();
}
