import {
  workflowInfo,
  condition,
  setHandler,
  CancellationScope,
  isCancellation,
  continueAsNew,
  ContinueAsNew,
  ApplicationFailure,
  log,
  upsertMemo,
  patched,
} from '@temporalio/workflow';
import { proxyRoutedActivities, routeActivities } from '../activity-route';
import type { BackfillActivities, PreparedBackfill } from '../../activities/backfill/index';
import { windowState } from '../../core/common/window';
import type { ThrottleChange } from '../../core/backfill/throttle';
import { initialThrottle, validateThrottleChange, applyThrottleChange } from '../../core/backfill/throttle';
import type { BackfillProgress, BackfillState } from '../definitions';
import { pauseSignal, resumeSignal, progressQuery, setThrottleUpdate } from '../definitions';
import { setSearchState } from '../search-state';
import type { BackfillRun, CarriedState } from './run';
import { now, bookkeeping, historyIsLong, progress, refreshCounters, minDefined } from './run';
import { backfillMemoSummary } from '../../steps/summary';
import { runLanes } from './lanes';
import { afterThrottleChange } from './control';
import { setRunState } from './report';
import { notifier } from '../notify';
import { cancelledBeforeHandover, handoverCancelled } from '../handover';
import { failureMessage } from '../failure-cause';
import type { BackfillSpec } from '../../core/common/fields';
import { qualifiedName } from '../../core/common/table-name';

export interface BackfillWorkflowInput {
  spec: BackfillSpec;
  /** Start a new generation instead of continuing from checkpoints. */
  restart?: boolean;
  /** Re-run the chunks of the last generation that cover [from, to), as a new generation. */
  replay?: { from: string; to: string };
  /** A scheduled run's window: stop for good this long after the run started. */
  runForMs?: number;
  /** How long one activity works before reporting progress (ms). */
  leaseMs?: number;
  /** Continue-as-new once history grows past this many events. */
  maxHistoryEvents?: number;
  /** State carried across continue-as-new. */
  carried?: CarriedState;
  /** A fleet target's backfill: the task queue of the target's activities (workflows/activity-route.ts); unset: this workflow's own. */
  activityQueue?: string;
}

export interface BackfillResult {
  state: BackfillState;
  generation: number;
  rowsProcessed: number;
  chunksDone: number;
  continued: boolean;
}

const prepare = proxyRoutedActivities<BackfillActivities>({
  startToCloseTimeout: '10 minutes',
  // prepareBackfill heartbeats: a worker that dies during it hands it on in seconds, not after the whole 10 minutes
  // (a backfill stuck that long: npm run chaos -- --minutes 30 --seed 2026)
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 20 },
});

const DEFAULT_LEASE_MS = 5_000;
/** Patch: finishBackfill reads the counters itself (one activity where there were two); older histories replay the two. */
const FINISH_COUNTS_CHECKPOINTS = 'finish-counts-checkpoints';
/** Patch: a run continuing as new waits for its deliveries before it reads what it carries (older histories read first). */
const SETTLE_BEFORE_HANDOVER = 'settle-before-handover';

/**
 * A backfill: lanes (at most `parallelism`) take partitions and work them in
 * leases of a few seconds; each chunk commits with its checkpoint inside the
 * activity, so the workflow only keeps counters and which partitions are done.
 * The parts: backfill-run.ts (state, progress, lease input), backfill-lanes.ts
 * (a round of lanes), backfill-control.ts (the latency/replica-lag probe).
 */
export async function backfillWorkflow(input: BackfillWorkflowInput): Promise<BackfillResult> {
  // size: the workflow's main loop: its signal handlers and state are closures over one run, and the order of its commands is what replay checks
  // a fleet target's backfill: its activities go to the target's queue (unset: this workflow's own)
  routeActivities(input.activityQueue);
  const { spec } = input;
  const table = qualifiedName(spec.table);
  const workflowId = workflowInfo().workflowId;
  const c: CarriedState = input.carried ?? {
    prepared: undefined as unknown as PreparedBackfill,
    throttle: initialThrottle(spec),
    isPaused: false,
    rowsThisRun: 0,
    chunksThisRun: 0,
    activeMs: 0,
    sqlMs: 0,
    throttleWaitMs: 0,
    deadlineMs: input.runForMs ? now() + input.runForMs : undefined,
    runs: 0,
  };
  const run: BackfillRun = {
    input,
    spec,
    table,
    workflowId,
    leaseMs: input.leaseMs ?? DEFAULT_LEASE_MS,
    c,
    state: 'starting',
    lastError: null,
    restartRound: false,
  };
  const notify = notifier({ kind: 'backfill', name: spec.name, tables: [table], notify: spec.notify });
  // the workflow's root scope: the UI's (or `stagefill cancel`'s) cancel cancels it
  const root = CancellationScope.current();

  setHandler(pauseSignal, (who) => {
    if (c.isPaused) return;
    c.isPaused = true;
    log.info('pause requested', { by: who?.by });
    run.lanes?.cancel(); // in-flight leases stop after their current chunk commits
  });
  setHandler(resumeSignal, (who) => {
    c.isPaused = false;
    log.info('resume requested', { by: who?.by });
  });
  setHandler(
    setThrottleUpdate,
    (change: ThrottleChange) => {
      const before = c.throttle;
      c.throttle = applyThrottleChange(c.throttle, change);
      afterThrottleChange(run, before); // a new budget restarts the probe with it
      return c.throttle; // leases read it when they start, within one lease
    },
    { validator: validateThrottleChange },
  );
  setHandler(progressQuery, (): BackfillProgress => progress(run));

  // the search attribute, a parent rollout (backfill-report.ts) and the webhook (notify.ts)
  const setState = (s: BackfillState) => {
    if (s === run.state) return;
    setRunState(run, s);
    notify.state(s, { lastError: run.lastError });
  };

  try {
    if (!c.prepared) {
      setSearchState('starting', { kind: 'backfill', tables: [table], name: spec.name });
      c.prepared = await prepare.prepareBackfill({
        workflowId,
        table,
        name: spec.name,
        key: spec.key,
        transform: spec.transform,
        spec,
        parallelism: spec.parallelism,
        range: spec.range && {
          from: spec.range.from === undefined ? undefined : String(spec.range.from),
          to: spec.range.to === undefined ? undefined : String(spec.range.to),
        },
        restart: input.restart,
        replay: input.replay,
      });
    }
    const p = c.prepared;
    // Merged into what the starter wrote (a rollout names its step there), never replacing it.
    if (!input.carried)
      upsertMemo({ summary: { ...(workflowInfo().memo?.summary as object | undefined), ...backfillMemoSummary(spec, table, p) } });

    for (;;) {
      const remaining = p.partitions.filter((x) => !x.isDone);
      if (!remaining.length) break;
      if (c.deadlineMs !== undefined && now() >= c.deadlineMs) {
        setState('window_closed');
        await bookkeeping.finishBackfill({ backfillId: p.backfillId, workflowId, state: 'window_closed', detail: progressDetail() });
        return result();
      }
      if (c.isPaused) {
        setState('paused');
        await condition(() => !c.isPaused);
        continue;
      }
      const w = spec.window ? windowState(spec.window, now()) : undefined;
      if (w && !w.isOpen) {
        setState('waiting_window');
        // A durable timer: no process sleeps through the day; signals still land.
        await condition(() => c.isPaused, Math.max(1000, (w.opensAtMs ?? now() + 60_000) - now()));
        continue;
      }
      if (historyIsLong(run)) {
        // what is carried is read after the last delivery has ended: a pause or throttle change handled while it ran
        // goes with it (before SETTLE_BEFORE_HANDOVER it was read first and such a change was lost)
        if (patched(SETTLE_BEFORE_HANDOVER)) await notify.settled();
        // a cancel that came while it settled (or with this task) ends this run as cancelled: the next would never hear of it
        if (cancelledBeforeHandover(root)) throw handoverCancelled();
        await continueAsNew<typeof backfillWorkflow>({ ...input, carried: { ...c, runs: c.runs + 1 } });
      }
      setState('running');
      const deadlineMs = minDefined(w?.closesAtMs, c.deadlineMs);
      run.restartRound = false;
      await runLanes(
        run,
        remaining.map((x) => x.no),
        deadlineMs,
      );
    }

    // Leases lost with a crashed worker committed chunks the workflow never heard of: count from the checkpoints.
    if (patched(FINISH_COUNTS_CHECKPOINTS)) {
      await finishCounted('completed');
    } else {
      await refreshCounters(run);
      setState('completed');
      await bookkeeping.finishBackfill({ backfillId: p.backfillId, workflowId, state: 'completed', detail: progressDetail() });
    }
    return result();
  } catch (err) {
    // continueAsNew() ends this run by throwing; it is a hand-over, not a failure.
    if (err instanceof ContinueAsNew) throw err;
    if (isCancellation(err)) {
      // The UI's Cancel: leases were cancelled and stopped after their current chunk.
      await CancellationScope.nonCancellable(async () => {
        setState('cancelled');
        if (c.prepared && patched(FINISH_COUNTS_CHECKPOINTS)) {
          await finishCounted('cancelled');
        } else if (c.prepared) {
          await refreshCounters(run);
          await bookkeeping.finishBackfill({ backfillId: c.prepared.backfillId, workflowId, state: 'cancelled', detail: progressDetail() });
        }
      });
      throw err;
    }
    run.lastError = failureMessage(err);
    setState('failed');
    if (c.prepared && patched(FINISH_COUNTS_CHECKPOINTS)) {
      await finishCounted('failed', run.lastError);
    } else if (c.prepared) {
      await refreshCounters(run);
      await bookkeeping.finishBackfill({
        backfillId: c.prepared.backfillId,
        workflowId,
        state: 'failed',
        error: run.lastError,
        detail: progressDetail(),
      });
    }
    throw ApplicationFailure.create({ message: run.lastError, type: 'BackfillFailed', nonRetryable: true, cause: err as Error });
  } finally {
    await notify.settled(); // a closing run would drop a delivery still scheduled
  }

  /**
   * The final state and audit row, with counters read from the checkpoints in
   * the same activity: leases lost with a crashed worker committed chunks the
   * workflow never heard of, and the database is the truth.
   */
  async function finishCounted(s: BackfillState, error?: string): Promise<void> {
    setState(s);
    const counters = await bookkeeping.finishBackfill({
      backfillId: c.prepared.backfillId,
      workflowId,
      state: s,
      error,
      countGeneration: c.prepared.generation,
      detail: { activeMs: progress(run).activeMs },
    });
    if (counters) {
      c.prepared.rowsDone = counters.rowsDone;
      c.prepared.chunksDone = counters.chunksDone;
    }
  }

  function progressDetail() {
    const pr = progress(run);
    return { rowsProcessed: pr.rowsProcessed, chunksDone: pr.chunksDone, generation: pr.generation, activeMs: pr.activeMs };
  }

  function result(): BackfillResult {
    return {
      state: run.state,
      generation: c.prepared.generation,
      rowsProcessed: c.prepared.rowsDone,
      chunksDone: c.prepared.chunksDone,
      continued: c.prepared.continued,
    };
  }
}
