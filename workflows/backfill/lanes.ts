/**
 * One round of a backfill: lanes (at most `parallelism`) take partitions and
 * work them in leases of a few seconds until all are done, a pause, a
 * deadline, or history needs trimming. In a controlled round (a latency
 * budget or a replica-lag limit) the probe runs beside the lanes and the
 * number of lanes at work follows its decision.
 */
import { condition, patched, CancellationScope, CancelledFailure, isCancellation, ActivityCancellationType } from '@temporalio/workflow';
import { proxyRoutedActivities } from '../activity-route';
import type { BackfillActivities, LeaseResult } from '../../activities/backfill/index';
import { isControlled } from '../../core/backfill/throttle';
import type { BackfillRun } from './run';
import { now, historyIsLong, leaseInput, account, refreshCounters } from './run';
import { runProbes } from './control';
import { afterLease } from './report';

const LEASE_HEARTBEAT_TIMEOUT = '10 seconds';
/** Patch: a lease goes on with a partition reserved for its lane (LeaseInput.thenPartitionNo). */
const LEASES_CHAIN_PARTITIONS = 'leases-chain-partitions';

const lease = proxyRoutedActivities<BackfillActivities>({
  startToCloseTimeout: '30 minutes',
  // Leases beat every second whatever they do, so a dead worker's lease moves on within seconds.
  heartbeatTimeout: LEASE_HEARTBEAT_TIMEOUT,
  // Wait for the lease to acknowledge: it stops after the chunk in flight commits.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
  // Eager dispatch would hand every lease to the worker running this workflow; through the
  // task queue, every worker polling it takes a share.
  allowEagerDispatch: false,
});

/** One round: lanes work partitions until all are done, a pause, a deadline, or history needs trimming. */
export async function runLanes(run: BackfillRun, partitionNos: number[], deadlineMs: number | undefined): Promise<void> {
  const { c } = run;
  const queue = [...partitionNos];
  const roundStart = now();
  run.roundStartedAt = roundStart;
  const scope = new CancellationScope();
  run.lanes = scope;
  let failure: { error: unknown } | undefined; // the first lane's error, as caught (held in a box: rethrown as it came)
  const controlled = isControlled(c.throttle);
  const stopped = () => Boolean(c.isPaused || failure || historyIsLong(run) || run.restartRound);
  const pastDeadline = () => deadlineMs !== undefined && now() >= deadlineMs;
  const fail = (err: unknown) => {
    failure ??= { error: err };
    scope.cancel();
  };
  // Each lane claims its partition before awaiting, so no two lanes work one partition.
  const claimedLane = async () => {
    while (queue.length && !stopped()) {
      const mine = queue.shift()!;
      const done = await laneOn(mine);
      if (!done) {
        queue.push(mine);
        return;
      }
    }
  };
  const laneOn = async (partitionNo: number): Promise<boolean> => {
    for (;;) {
      if (stopped() || pastDeadline()) return false;
      let r: LeaseResult;
      try {
        r = await lease.runPartitionLease(leaseInput(run, partitionNo, deadlineMs));
      } catch (err) {
        if (!isCancellation(err)) fail(err);
        return false;
      }
      account(run, r);
      afterLease(run);
      if (r.partitionDone) {
        c.prepared.partitions.find((x) => x.no === partitionNo)!.isDone = true;
        return true;
      }
      if (r.stoppedBy === 'deadline' || r.stoppedBy === 'cancelled') return false;
    }
  };
  // A lane reserves the partition after its own while more partitions wait than there are lanes, and
  // its lease goes straight on with it: one hand-off through the workflow where there were two. Near
  // the end lanes reserve nothing, so none waits behind another's reservation.
  const chainedLane = async () => {
    while (queue.length && !stopped()) {
      const unfinished = await chainOn(queue.shift()!);
      if (unfinished.length) {
        queue.push(...unfinished);
        return;
      }
    }
  };
  /** Lanes the controller wants at work now (lane 0 always works). */
  const wantedLanes = () => Math.max(1, c.control ? c.control.lanes : c.throttle.latency ? 1 : c.throttle.parallelism);
  let working = 0;
  /**
   * A controlled lane: parks (a condition, no timer, nothing in history) while the controller
   * wants fewer lanes, and comes back when it wants more. Lane 0 never parks; it leaves only
   * when no partition waits and no other lane holds one, so a partition a parked lane gave
   * back is always taken up.
   */
  const controlledLane = async (laneNo: number) => {
    for (;;) {
      const mayWork = () => queue.length > 0 && laneNo < wantedLanes();
      const isRoundOver = () => scope.consideredCancelled || stopped() || pastDeadline() || (queue.length === 0 && working === 0);
      await condition(() => mayWork() || isRoundOver() || (laneNo > 0 && queue.length === 0));
      if (isRoundOver() || !mayWork()) {
        if (laneNo === 0 && !isRoundOver()) continue;
        return;
      }
      working++;
      let unfinished: number[];
      try {
        unfinished = await chainOn(queue.shift()!, laneNo);
      } finally {
        working--;
      }
      if (unfinished.length) queue.push(...unfinished);
    }
  };
  /** Works `first` and the partitions it reserves on the way; returns what it leaves unfinished. */
  const chainOn = async (first: number, laneNo?: number): Promise<number[]> => {
    let current = first;
    let next: number | undefined;
    for (;;) {
      if (next === undefined && queue.length > parallelism) next = queue.shift();
      const unfinished = () => (next === undefined ? [current] : [current, next]);
      if (stopped() || pastDeadline()) return unfinished();
      if (laneNo !== undefined && laneNo >= wantedLanes()) return unfinished();
      let r: LeaseResult;
      try {
        const base = { ...leaseInput(run, current, deadlineMs), thenPartitionNo: next };
        // controlled: the decision carries the rate (the spec's maxRowsPerSecond its ceiling), shared by the lanes it wants
        r = await lease.runPartitionLease(laneNo === undefined ? base : { ...base, maxRowsPerSecond: undefined, control: { laneNo } });
      } catch (err) {
        if (!isCancellation(err)) fail(err);
        return unfinished();
      }
      account(run, r);
      afterLease(run);
      for (const no of r.donePartitions ?? []) c.prepared.partitions.find((x) => x.no === no)!.isDone = true;
      if (r.partitionNo !== undefined && r.partitionNo !== current) {
        current = r.partitionNo; // the lease went on with the reserved one
        next = undefined;
      }
      if (r.partitionDone) {
        if (next === undefined) return [];
        current = next;
        next = undefined;
        continue;
      }
      if (r.stoppedBy === 'deadline' || r.stoppedBy === 'cancelled') return unfinished();
    }
  };
  const parallelism = Math.max(1, Math.min(c.throttle.parallelism, queue.length));
  const lane = patched(LEASES_CHAIN_PARTITIONS) ? chainedLane : claimedLane;
  try {
    if (controlled) {
      let lanesOver = false;
      await scope.run(async () => {
        const probing = runProbes(run, () => lanesOver || stopped(), fail);
        try {
          await Promise.all(Array.from({ length: parallelism }, (_, i) => controlledLane(i)));
        } finally {
          lanesOver = true;
          run.probe?.cancel();
        }
        await probing;
      });
    } else {
      await scope.run(() => Promise.all(Array.from({ length: parallelism }, lane)));
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
  }
  c.activeMs += now() - roundStart;
  run.roundStartedAt = undefined;
  run.lanes = undefined;
  if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('backfill cancelled');
  if (failure) throw failure.error;
  if (c.isPaused) await refreshCounters(run);
}
