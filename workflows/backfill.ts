import {
  proxyActivities,
  workflowInfo,
  condition,
  setHandler,
  CancellationScope,
  isCancellation,
  continueAsNew,
  ContinueAsNew,
  ActivityFailure,
  ApplicationFailure,
  ActivityCancellationType,
  CancelledFailure,
  log,
  upsertMemo,
  patched,
} from '@temporalio/workflow';
import type { BackfillActivities, LeaseInput, LeaseResult, PreparedBackfill } from '../activities/backfill';
import type { BackfillSpec } from '../spec';
import { windowState } from '../plan/window';
import { qualifiedName } from '../plan/ids';
import {
  pauseSignal,
  resumeSignal,
  progressQuery,
  setThrottleUpdate,
  BackfillProgress,
  BackfillState,
  ThrottleSettings,
  ThrottleChange,
} from './definitions';
import { setSearchState } from './search-state';
import { backfillMemoSummary as memoSummary } from '../plan/summary';

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
}

export interface BackfillResult {
  state: BackfillState;
  generation: number;
  rowsProcessed: number;
  chunksDone: number;
  continued: boolean;
}

interface CarriedState {
  prepared: PreparedBackfill;
  throttle: ThrottleSettings;
  isPaused: boolean;
  rowsThisRun: number;
  chunksThisRun: number;
  activeMs: number;
  sqlMs: number;
  throttleWaitMs: number;
  deadlineMs?: number;
  runs: number;
}

const prepare = proxyActivities<BackfillActivities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 20 },
});

const bookkeeping = proxyActivities<BackfillActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumInterval: '30s' },
});

const DEFAULT_LEASE_MS = 5_000;
const LEASE_HEARTBEAT_TIMEOUT = '10 seconds';
const DEFAULT_MAX_HISTORY = 8_000;
/** Patch: finishBackfill reads the counters itself (one activity where there were two); older histories replay the two. */
const FINISH_COUNTS_CHECKPOINTS = 'finish-counts-checkpoints';
/** Patch: a lease goes on with a partition reserved for its lane (LeaseInput.thenPartitionNo). */
const LEASES_CHAIN_PARTITIONS = 'leases-chain-partitions';

/**
 * A backfill: lanes (at most `parallelism`) take partitions and work them in
 * leases of a few seconds; each chunk commits with its checkpoint inside the
 * activity, so the workflow only keeps counters and which partitions are done.
 */
export async function backfillWorkflow(input: BackfillWorkflowInput): Promise<BackfillResult> {
  const { spec } = input;
  const table = qualifiedName(spec.table);
  const workflowId = workflowInfo().workflowId;
  // Date.now() inside a workflow is the deterministic time of the current workflow task.
  const now = () => Date.now();
  const leaseMs = input.leaseMs ?? DEFAULT_LEASE_MS;

  let state: BackfillState = 'starting';
  let lastError: string | null = null;
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
  let lanes: CancellationScope | undefined;
  /** When the round of lanes under way started (workflow time), for a live rate. */
  let roundStartedAt: number | undefined;

  setHandler(pauseSignal, (who) => {
    if (c.isPaused) return;
    c.isPaused = true;
    log.info('pause requested', { by: who?.by });
    lanes?.cancel(); // in-flight leases stop after their current chunk commits
  });
  setHandler(resumeSignal, (who) => {
    c.isPaused = false;
    log.info('resume requested', { by: who?.by });
  });
  setHandler(
    setThrottleUpdate,
    (change: ThrottleChange) => {
      c.throttle = applyThrottleChange(c.throttle, change);
      return c.throttle; // leases read it when they start, within one lease
    },
    { validator: validateThrottleChange },
  );
  setHandler(progressQuery, (): BackfillProgress => progress());

  function progress(): BackfillProgress {
    const p = c.prepared;
    const rowsProcessed = p ? p.rowsDone : 0;
    const chunksDone = p ? p.chunksDone : 0;
    const rowsTotal = p ? Math.max(p.rowsTotal, rowsProcessed) : 0;
    // the round under way counts too: rows move at every lease's return, long before the round ends
    const activeMs = c.activeMs + (roundStartedAt === undefined ? 0 : now() - roundStartedAt);
    const rate = activeMs > 0 ? (c.rowsThisRun * 1000) / activeMs : 0;
    const remainingRows = Math.max(0, rowsTotal - rowsProcessed);
    const done = p ? p.partitions.filter((x) => x.isDone).length : 0;
    const w = spec.window ? windowState(spec.window, now()) : undefined;
    return {
      kind: 'backfill',
      name: spec.name,
      table,
      state,
      generation: p?.generation ?? 0,
      chunksDone,
      chunksTotal: chunksDone + Math.ceil(remainingRows / Math.max(1, c.throttle.chunkSize)),
      rowsProcessed,
      rowsTotal,
      rowsPerSecond: Math.round(rate),
      etaSeconds: state === 'completed' ? 0 : rate > 0 ? Math.ceil(remainingRows / rate) : null,
      lastError,
      partitionsDone: done,
      partitions: p?.partitions.length ?? 0,
      throttle: c.throttle,
      throttleWaitMs: c.throttleWaitMs,
      chunkSqlMs: Math.round(c.sqlMs),
      activeMs,
      continued: p?.continued ?? false,
      window: w && {
        isOpen: w.isOpen,
        closesAt: w.closesAtMs ? new Date(w.closesAtMs).toISOString() : undefined,
        opensAt: w.opensAtMs ? new Date(w.opensAtMs).toISOString() : undefined,
      },
    };
  }

  const setState = (s: BackfillState) => {
    if (s === state) return;
    state = s;
    setSearchState(s);
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
    if (!input.carried) upsertMemo({ summary: { ...(workflowInfo().memo?.summary as object | undefined), ...memoSummary(spec, table, p) } });

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
      if (historyIsLong()) {
        await continueAsNew<typeof backfillWorkflow>({ ...input, carried: { ...c, runs: c.runs + 1 } });
      }
      setState('running');
      const deadlineMs = minDefined(w?.closesAtMs, c.deadlineMs);
      await runLanes(remaining.map((x) => x.no), deadlineMs);
    }

    // Leases lost with a crashed worker committed chunks the workflow never heard of: count from the checkpoints.
    if (patched(FINISH_COUNTS_CHECKPOINTS)) {
      await finishCounted('completed');
    } else {
      await refreshCounters();
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
          await refreshCounters();
          await bookkeeping.finishBackfill({ backfillId: c.prepared.backfillId, workflowId, state: 'cancelled', detail: progressDetail() });
        }
      });
      throw err;
    }
    lastError = failureMessage(err);
    setState('failed');
    if (c.prepared && patched(FINISH_COUNTS_CHECKPOINTS)) {
      await finishCounted('failed', lastError);
    } else if (c.prepared) {
      await refreshCounters();
      await bookkeeping.finishBackfill({ backfillId: c.prepared.backfillId, workflowId, state: 'failed', error: lastError, detail: progressDetail() });
    }
    throw ApplicationFailure.create({ message: lastError, type: 'BackfillFailed', nonRetryable: true, cause: err as Error });
  }

  /** One round: lanes work partitions until all are done, a pause, a deadline, or history needs trimming. */
  async function runLanes(partitionNos: number[], deadlineMs: number | undefined): Promise<void> {
    const queue = [...partitionNos];
    const roundStart = now();
    roundStartedAt = roundStart;
    const scope = new CancellationScope();
    lanes = scope;
    let failure: unknown;
    const lease = proxyActivities<BackfillActivities>({
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
    // Each lane claims its partition before awaiting, so no two lanes work one partition.
    const claimedLane = async () => {
      while (queue.length && !c.isPaused && !failure && !historyIsLong()) {
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
        if (c.isPaused || failure || historyIsLong() || (deadlineMs !== undefined && now() >= deadlineMs)) return false;
        let r: LeaseResult;
        try {
          r = await lease.runPartitionLease(leaseInput(partitionNo, deadlineMs));
        } catch (err) {
          if (!isCancellation(err)) {
            failure ??= err;
            scope.cancel();
          }
          return false;
        }
        account(r);
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
      while (queue.length && !c.isPaused && !failure && !historyIsLong()) {
        const unfinished = await chainOn(queue.shift()!);
        if (unfinished.length) {
          queue.push(...unfinished);
          return;
        }
      }
    };
    /** Works `first` and the partitions it reserves on the way; returns what it leaves unfinished. */
    const chainOn = async (first: number): Promise<number[]> => {
      let current = first;
      let next: number | undefined;
      for (;;) {
        if (next === undefined && queue.length > parallelism) next = queue.shift();
        const unfinished = () => (next === undefined ? [current] : [current, next]);
        if (c.isPaused || failure || historyIsLong() || (deadlineMs !== undefined && now() >= deadlineMs)) return unfinished();
        let r: LeaseResult;
        try {
          r = await lease.runPartitionLease({ ...leaseInput(current, deadlineMs), thenPartitionNo: next });
        } catch (err) {
          if (!isCancellation(err)) {
            failure ??= err;
            scope.cancel();
          }
          return unfinished();
        }
        account(r);
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
      await scope.run(() => Promise.all(Array.from({ length: parallelism }, lane)));
    } catch (err) {
      if (!isCancellation(err)) throw err;
    }
    c.activeMs += now() - roundStart;
    roundStartedAt = undefined;
    lanes = undefined;
    if (CancellationScope.current().consideredCancelled) throw new CancelledFailure('backfill cancelled');
    if (failure) throw failure;
    if (c.isPaused) await refreshCounters();
  }

  function leaseInput(partitionNo: number, deadlineMs: number | undefined): LeaseInput {
    const t = c.throttle;
    const hc = spec.throttle?.healthCheck;
    return {
      backfillId: c.prepared.backfillId,
      generation: c.prepared.generation,
      partitionNo,
      table,
      key: spec.key,
      keyType: c.prepared.keyType,
      isKeyUnique: c.prepared.isKeyUnique,
      transform: spec.transform,
      transformHash: c.prepared.transformHash,
      validate: spec.validate,
      chunkSize: t.chunkSize,
      minChunkSize: t.minChunkSize,
      maxChunkSize: t.maxChunkSize,
      targetChunkMs: t.targetChunkMs,
      maxRowsPerSecond: t.maxRowsPerSecond ? t.maxRowsPerSecond / Math.max(1, t.parallelism) : undefined,
      healthCheck: hc && { sql: hc.sql, max: hc.max, everyMs: hc.every, backoffMs: hc.backoff },
      lockTimeoutMs: spec.lockTimeoutMs,
      statementTimeoutMs: spec.statementTimeoutMs,
      leaseMs,
      deadlineMs,
    };
  }

  function account(r: LeaseResult): void {
    c.prepared.rowsDone += r.rows;
    c.prepared.chunksDone += r.chunks;
    c.rowsThisRun += r.rows;
    c.chunksThisRun += r.chunks;
    c.sqlMs += r.sqlMs;
    c.throttleWaitMs += r.throttleWaitMs;
    if (c.throttle.targetChunkMs) c.throttle = { ...c.throttle, chunkSize: r.chunkSize };
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
      detail: { activeMs: progress().activeMs },
    });
    if (counters) {
      c.prepared.rowsDone = counters.rowsDone;
      c.prepared.chunksDone = counters.chunksDone;
    }
  }

  async function refreshCounters(): Promise<void> {
    const counters = await bookkeeping.readBackfillCounters({ backfillId: c.prepared.backfillId, generation: c.prepared.generation });
    c.prepared.rowsDone = counters.rowsDone;
    c.prepared.chunksDone = counters.chunksDone;
  }

  function historyIsLong(): boolean {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength > (input.maxHistoryEvents ?? DEFAULT_MAX_HISTORY);
  }

  function progressDetail() {
    const pr = progress();
    return { rowsProcessed: pr.rowsProcessed, chunksDone: pr.chunksDone, generation: pr.generation, activeMs: pr.activeMs };
  }

  function result(): BackfillResult {
    return {
      state,
      generation: c.prepared.generation,
      rowsProcessed: c.prepared.rowsDone,
      chunksDone: c.prepared.chunksDone,
      continued: c.prepared.continued,
    };
  }
}

function initialThrottle(spec: BackfillSpec): ThrottleSettings {
  const t = spec.throttle ?? {};
  return {
    chunkSize: spec.chunkSize,
    minChunkSize: t.minChunkSize ?? Math.max(1, Math.floor(spec.chunkSize / 10)),
    maxChunkSize: t.maxChunkSize ?? spec.chunkSize * 10,
    parallelism: spec.parallelism,
    maxRowsPerSecond: t.maxRowsPerSecond,
    targetChunkMs: t.targetChunkMs,
  };
}

export function validateThrottleChange(change: ThrottleChange): void {
  if (typeof change !== 'object' || change === null) throw new Error('setThrottle takes an object such as {"chunkSize": 2000}');
  const allowed = ['chunkSize', 'maxRowsPerSecond', 'targetChunkMs', 'parallelism'];
  for (const k of Object.keys(change)) {
    if (!allowed.includes(k)) throw new Error(`setThrottle: unknown field "${k}"; allowed: ${allowed.join(', ')}`);
  }
  const positiveInt = (k: keyof ThrottleChange, max: number) => {
    const v = change[k];
    if (v === undefined || v === null) return;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new Error(`setThrottle.${k}: expected an integer from 1 to ${max}, got ${JSON.stringify(v)}`);
  };
  positiveInt('chunkSize', 1_000_000);
  positiveInt('parallelism', 64);
  positiveInt('targetChunkMs', 600_000);
  const r = change.maxRowsPerSecond;
  if (r !== undefined && r !== null && (typeof r !== 'number' || !(r > 0))) {
    throw new Error(`setThrottle.maxRowsPerSecond: expected a positive number or null (no limit), got ${JSON.stringify(r)}`);
  }
}

function applyThrottleChange(t: ThrottleSettings, change: ThrottleChange): ThrottleSettings {
  const next = { ...t };
  if (change.chunkSize !== undefined) {
    next.chunkSize = change.chunkSize;
    next.minChunkSize = Math.min(next.minChunkSize, change.chunkSize);
    next.maxChunkSize = Math.max(next.maxChunkSize, change.chunkSize);
  }
  if (change.parallelism !== undefined) next.parallelism = change.parallelism;
  if (change.maxRowsPerSecond !== undefined) next.maxRowsPerSecond = change.maxRowsPerSecond ?? undefined;
  if (change.targetChunkMs !== undefined) next.targetChunkMs = change.targetChunkMs ?? undefined;
  return next;
}

function minDefined(...xs: (number | undefined)[]): number | undefined {
  const d = xs.filter((x): x is number => x !== undefined);
  return d.length ? Math.min(...d) : undefined;
}

/** The root cause's message: the database's own words for a failed chunk. */
export function failureMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure || e instanceof Error) return e.message;
  return String(e);
}
