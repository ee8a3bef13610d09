// size: the fleet workflow with its signal, query and update handlers over one run's state (being extended this round; split once it settles)
/**
 * A fleet: one change promoted across many databases in ordered waves. Each
 * target's change is the existing rollout or backfill workflow, started
 * through fleetTargetWorkflow, with its database activities on the target's
 * own task queue (workflows/activity-route.ts); a wave runs up
 * to its parallelism of targets at once (a slow target holds only its own
 * slot), halts per its failure policy (a failed rollout has rolled itself
 * back; later waves stay untouched), and waits for `approve` where asked.
 * Targets report their end by signal, so the fleet continues as new whenever
 * its history grows, running targets and all. `rollback` (or cancelling
 * the fleet) reverses the targets that have not contracted, newest wave
 * first. Deterministic.
 */
import {
  condition,
  setHandler,
  startChild,
  getExternalWorkflowHandle,
  workflowInfo,
  proxyActivities,
  continueAsNew,
  ParentClosePolicy,
  ChildWorkflowCancellationType,
  ApplicationFailure,
  log,
  upsertSearchAttributes,
  patched,
  isCancellation,
  CancellationScope,
} from '@temporalio/workflow';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import type { FleetControlActivities } from '../../activities/fleet/control';
import type { FleetSpec } from '../../steps/fleet-spec';
import { changeTables } from '../../steps/fleet-spec';
import { FailureType } from '../../core/common/failures';
import { fleetControlQueue, targetQueue, targetRunId, targetChangeId } from '../../core/fleet/ids';
import { planWaves, allowedFailures, WavePlanError } from '../../core/fleet/waves';
import { shapeDifferences } from '../../core/fleet/shape';
import type { FleetProgress, FleetState, FleetTargetRun, FleetWaveState } from '../../core/fleet/progress';
import { countTargets, fleetPercent } from '../../core/fleet/progress';
import type { ActorPayload } from '../definitions';
import { pauseSignal, resumeSignal, approveSignal, rollbackSignal, retrySignal, progressQuery } from '../definitions';
import { SA } from '../search-attributes';
import { setSearchState } from '../search-state';
import { causeMessage } from '../failure-cause';
import { notifier } from '../notify';
import type { TargetFinished } from './definitions';
import { targetFinishedSignal } from './definitions';
import type { fleetTargetWorkflow } from './target';
import type { WaveSoakState } from './soak';
import { soakRound } from './soak';
import type { WaveSoak } from '../../core/fleet/waves';
import { gatherServedTargets, gatherTableShapes } from './served';

/**
 * Patch: a target's workflows run on the fleet's base queue (one workflow Worker per worker process) and only its
 * activities on the target's queue; before, the target's queue took its workflows too (a Worker per target). Also
 * a target is started with cancellation ABANDON (a cancelled fleet rolls back by signal, and hears each target's end).
 */
export const TARGET_WORKFLOWS_ON_BASE_QUEUE = 'fleet-target-workflows-on-base-queue';

/** Patch: the fleet notifies (its `notify:` webhook, the worker's): each wave started, completed or halted, the fleet finished or rolled back. */
export const FLEET_NOTIFICATIONS = 'fleet-wave-notifications';

/** Patch: a fleet refused at start notifies `failed` (with the refusal as reason) before it fails; `retry` after a halt notifies `wave_started` again for the wave it resumes. */
export const FLEET_REFUSED_RETRY_NOTIFICATIONS = 'fleet-refused-retry-notifications';

/** Patch: a wave with `soak:` runs its checks on its targets after they completed (only soaking fleets record it). */
export const FLEET_WAVE_SOAK = 'fleet-wave-soak';

/**
 * Patch: the fleet's targets are gathered from every worker process serving fleets on its queue (each answers for
 * its own targets file, and a process serving a target reads its tables' shapes); before, whichever process took
 * the control queue's activity answered for its file alone.
 */
export const FLEET_TARGETS_FROM_EVERY_WORKER = 'fleet-targets-from-every-worker';

/** Patch: a `maxFailures` share tolerates at least one failure (10% of a wave of 5: 1, not 0); before, plain rounding down. */
export const FAILURE_SHARE_AT_LEAST_ONE = 'fleet-failure-share-at-least-one';

/** A run continues as new past this many events, at a moment no target is being started. */
export const FLEET_CONTINUE_AS_NEW_AFTER_EVENTS = 2000;

export interface FleetWorkflowInput {
  spec: FleetSpec;
  actor?: string;
  carried?: CarriedFleet;
  /** Tests lower it. */
  continueAsNewAfterEvents?: number;
  /**
   * A scheduled firing's window (a fleet of a backfill, client/schedules.ts): no target starts after it ends, each
   * target's backfill stops at its end (`window_closed`), and the fleet ends `window_closed`; the next firing
   * continues each target from its checkpoints.
   */
  runForMs?: number;
}

/** Where the fleet stands, handed to the next run of its chain. */
export interface CarriedFleet {
  run: number;
  state: FleetState;
  targets: FleetTargetRun[];
  waveStates: FleetWaveState[];
  waveIndex: number;
  isPaused: boolean;
  approvals: number;
  retries: number;
  rollbackReason: string | null;
  lastError: string | null;
  skipped: { target: string; reason: string }[];
  /** Halted or waiting for approval: the retries or approvals count when the wait began (an approval before a continue-as-new is not lost). */
  waitSeen?: number;
  /** A wave soaking now: where its soak stands. */
  soak?: WaveSoakState;
  /** A scheduled firing's window ends then (workflow time, ms). */
  windowEndsAt?: number;
  /** Targets failed by a wave's soak (their change completed): `retry` soaks them again rather than rerunning the change. */
  soakFailed?: string[];
}

export interface FleetResult {
  state: FleetState;
  progress: FleetProgress;
}

export async function fleetWorkflow(input: FleetWorkflowInput): Promise<FleetResult> {
  // size: the workflow's main loop: its signal handlers and state are closures over one run, and the order of its commands is what replay checks
  const { spec } = input;
  const info = workflowInfo();
  const fleetId = info.workflowId;
  const baseQueue = info.taskQueue;
  const control = proxyActivities<FleetControlActivities>({
    taskQueue: fleetControlQueue(baseQueue),
    // no fleet worker on the control queue for this long: refused with the hint below, rather than waiting unseen
    scheduleToCloseTimeout: '5 minutes',
    startToCloseTimeout: '2 minutes',
    retry: { initialInterval: '1s', maximumInterval: '20s' },
  });

  const c: CarriedFleet = input.carried ?? {
    run: 1,
    state: 'starting',
    targets: [],
    waveStates: spec.waves.map(() => 'pending'),
    waveIndex: 0,
    isPaused: false,
    approvals: 0,
    retries: 0,
    rollbackReason: null,
    lastError: null,
    skipped: [],
    ...(input.runForMs ? { windowEndsAt: Date.now() + input.runForMs } : {}),
  };
  let wake = 0;
  const isWindowOver = () => c.windowEndsAt !== undefined && Date.now() >= c.windowEndsAt;
  let starting = 0;
  // fleets from before notifications schedule none, so their histories replay unchanged
  const notifying = patched(FLEET_NOTIFICATIONS);
  const failureRule = { atLeastOne: patched(FAILURE_SHARE_AT_LEAST_ONE) };
  const notify = notifier({ kind: 'fleet', name: spec.name, tables: changeTables(spec.change), notify: spec.notify });
  const byName = new Map(c.targets.map((t) => [t.name, t]));

  const waveTargets = (i: number) => c.targets.filter((t) => t.wave === i);
  const waveName = (i: number) => spec.waves[i]?.name ?? `wave ${i + 1}`;
  const setState = (s: FleetState) => {
    c.state = s;
    setSearchState(s);
  };

  function progress(): FleetProgress {
    return {
      kind: 'fleet',
      name: spec.name,
      state: c.state,
      change: { kind: spec.change.kind, name: spec.change.name },
      currentWave: c.waveIndex < spec.waves.length && c.state !== 'starting' ? waveName(c.waveIndex) : null,
      waves: spec.waves.map((w, i) => {
        const allowed = allowedFailures(w, waveTargets(i).length, failureRule);
        return {
          name: w.name,
          state: c.waveStates[i] ?? 'pending',
          targets: waveTargets(i).length,
          parallelism: w.parallelism,
          allowedFailures: Number.isFinite(allowed) ? allowed : null,
          counts: countTargets(waveTargets(i)),
        };
      }),
      failed: c.targets
        .filter((t) => t.state === 'failed')
        .map((t) => ({ target: t.name, wave: waveName(t.wave), cause: t.cause ?? 'unknown' })),
      skipped: c.skipped,
      targets: c.targets.map((t) => ({
        name: t.name,
        wave: waveName(t.wave),
        state: t.state,
        workflowId: targetChangeId(fleetId, t.name),
        ...(t.cause ? { cause: t.cause } : {}),
        attempt: t.attempt,
      })),
      totalTargets: c.targets.length,
      completedTargets: c.targets.filter((t) => t.state === 'completed').length,
      percent: fleetPercent(c.targets),
      lastError: c.lastError,
      rollbackReason: c.rollbackReason,
      run: c.run,
    };
  }

  const signalTarget = (t: FleetTargetRun, signal: typeof pauseSignal, who?: ActorPayload) =>
    void getExternalWorkflowHandle(targetRunId(fleetId, t.name))
      .signal(signal, who)
      .catch((err) => log.warn('signal to a target failed', { target: t.name, error: String(err) }));

  setHandler(progressQuery, progress);
  setHandler(targetFinishedSignal, (f: TargetFinished) => {
    const t = byName.get(f.target);
    // a late report of an earlier attempt changes nothing
    if (!t || t.attempt !== f.attempt || t.state !== 'running') return;
    // its backfill stopped at the window's end: the next firing continues it
    if (f.windowClosed)
      Object.assign(t, { state: 'pending', cause: 'the window closed before its backfill ended; the next firing continues it' });
    else Object.assign(t, { state: f.state, cause: f.cause });
    wake++;
  });
  setHandler(pauseSignal, (who?: ActorPayload) => {
    c.isPaused = true;
    wake++;
    for (const t of c.targets) if (t.state === 'running') signalTarget(t, pauseSignal, who);
  });
  setHandler(resumeSignal, (who?: ActorPayload) => {
    c.isPaused = false;
    wake++;
    for (const t of c.targets) if (t.state === 'running') signalTarget(t, resumeSignal, who);
  });
  setHandler(approveSignal, () => {
    c.approvals++;
    wake++;
  });
  setHandler(retrySignal, () => {
    c.retries++;
    wake++;
  });
  setHandler(rollbackSignal, (who?: ActorPayload) => {
    c.rollbackReason ??= `rollback requested by ${who?.by ?? 'an operator'}${who?.reason ? `: ${who.reason}` : ''}`;
    wake++;
  });

  const refuse = async (message: string): Promise<never> => {
    c.lastError = message;
    setState('refused');
    // refused fleets from before this patch failed without a word: their histories schedule no delivery
    if (notifying && patched(FLEET_REFUSED_RETRY_NOTIFICATIONS)) {
      notify.state('refused', { lastError: message });
      await notify.settled();
    }
    throw ApplicationFailure.create({ message, type: FailureType.FleetRefused, nonRetryable: true });
  };

  if (!input.carried) {
    upsertSearchAttributes([{ key: SA.fleet, value: spec.name }]);
    setSearchState('starting', { kind: 'fleet', name: spec.name });
    const fromEveryWorker = patched(FLEET_TARGETS_FROM_EVERY_WORKER);
    let served;
    let gathered;
    try {
      if (fromEveryWorker) served = (gathered = await gatherServedTargets(baseQueue)).targets;
      else served = await control.fleetTargets();
    } catch (err) {
      return refuse(
        `cannot read the fleet's targets from ${fleetControlQueue(baseQueue)}: ${causeMessage(err)}; start a worker with STAGEFILL_TARGETS on task queue ${baseQueue}`,
      );
    }
    let planned;
    try {
      planned = planWaves(served, spec.waves);
    } catch (err) {
      if (err instanceof WavePlanError) return refuse(err.message);
      throw err;
    }
    const inWaves = planned.waves.flatMap((w) => w.targets);
    const shapes = gathered
      ? await gatherTableShapes(baseQueue, gathered, changeTables(spec.change), inWaves)
      : await control.fleetTableShapes({ tables: changeTables(spec.change), targets: inWaves });
    const differing = new Map<string, string>();
    for (const s of shapes) if (s.error) differing.set(s.target, `cannot read ${s.table}: ${s.error}`);
    for (const table of new Set(shapes.map((s) => s.table)))
      for (const d of shapeDifferences(
        table,
        shapes.filter((s) => s.table === table && !s.error),
      ))
        differing.set(d.target, `${table} differs: ${d.differences.join('; ')}`);
    if (differing.size && spec.onShapeMismatch === 'refuse')
      return refuse(
        `targets differ from the others before anything started: ${[...differing].map(([t, why]) => `${t}: ${why}`).join(' | ')} (fix them, or set onShapeMismatch: skip)`,
      );
    c.skipped = [...differing].map(([target, reason]) => ({ target, reason }));
    planned.waves.forEach((w, i) => {
      for (const name of w.targets) {
        const reason = differing.get(name);
        c.targets.push({ name, wave: i, state: reason ? 'skipped' : 'pending', attempt: 0, ...(reason ? { cause: reason } : {}) });
      }
    });
    for (const t of c.targets) byName.set(t.name, t);
    setState('running');
  }

  function launch(t: FleetTargetRun): void {
    t.state = 'running';
    t.attempt++;
    t.cause = undefined;
    starting++;
    const onBase = patched(TARGET_WORKFLOWS_ON_BASE_QUEUE);
    void startChild<typeof fleetTargetWorkflow>('fleetTargetWorkflow', {
      workflowId: targetRunId(fleetId, t.name),
      taskQueue: onBase ? baseQueue : targetQueue(baseQueue, t.name),
      args: [
        {
          ...(onBase ? { activityQueue: targetQueue(baseQueue, t.name) } : {}),
          ...(c.windowEndsAt !== undefined ? { runForMs: Math.max(1, c.windowEndsAt - Date.now()) } : {}),
          fleetWorkflowId: fleetId,
          fleetName: spec.name,
          target: t.name,
          attempt: t.attempt,
          change: spec.change,
          changeWorkflowId: targetChangeId(fleetId, t.name),
          actor: input.actor,
        },
      ],
      // the fleet continues as new while targets run: they report by signal, not through this handle
      parentClosePolicy: ParentClosePolicy.ABANDON,
      // a cancelled fleet rolls its targets back by signal (rollBack), newest wave first, and hears each one's end
      ...(onBase ? { cancellationType: ChildWorkflowCancellationType.ABANDON } : {}),
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      typedSearchAttributes: [
        { key: SA.kind, value: 'fleet-target' },
        { key: SA.fleet, value: spec.name },
        { key: SA.name, value: t.name },
      ],
    })
      .then(
        () => {},
        (err) => {
          t.state = 'failed';
          t.cause = `could not start: ${causeMessage(err)}`;
        },
      )
      .finally(() => {
        starting--;
        wake++;
      });
  }

  const eventLimit = Math.max(200, input.continueAsNewAfterEvents ?? FLEET_CONTINUE_AS_NEW_AFTER_EVENTS);
  async function maybeContinue(): Promise<void> {
    const i = workflowInfo();
    if (starting > 0 || (i.historyLength < eventLimit && !i.continueAsNewSuggested)) return;
    // a run that closes drops the deliveries it still has scheduled
    await notify.settled();
    log.info('fleet continues as new', { historyLength: i.historyLength, run: c.run + 1 });
    await continueAsNew<typeof fleetWorkflow>({ ...input, carried: { ...c, run: c.run + 1 } });
  }

  // wakes on any change, or when the run may continue as new (history long, no start in flight); a rollback asked for
  // wakes the waves' waits, not the rollback's own (there it is always set: the wait would never wait)
  const waitForChange = async (wakeOnRollback = true) => {
    const seen = wake;
    await condition(
      () =>
        wake !== seen || (wakeOnRollback && c.rollbackReason !== null) || (starting === 0 && workflowInfo().historyLength >= eventLimit),
    );
  };

  // `stagefill cancel` (the workflow's cancellation) rolls the fleet back like `rollback`
  try {
    await runWaves();
  } catch (err) {
    if (!isCancellation(err)) throw err;
    c.rollbackReason ??= 'the fleet was cancelled';
  }

  if (c.rollbackReason === null) {
    // a scheduled firing whose window closed before every target ended: the next firing goes on
    setState(c.targets.some((t) => t.state === 'pending') && isWindowOver() ? 'window_closed' : 'completed');
    if (notifying) notify.state(c.state);
    await notify.settled();
    return { state: c.state, progress: progress() };
  }
  return CancellationScope.nonCancellable(rollBack);

  async function runWaves(): Promise<void> {
    for (; c.waveIndex < spec.waves.length && c.rollbackReason === null;) {
      const i = c.waveIndex;
      const rule = spec.waves[i];
      if (!rule) break;
      const targets = waveTargets(i);
      const allowed = allowedFailures(rule, targets.length, failureRule);
      if (c.waveStates[i] === 'pending') {
        c.waveStates[i] = 'running';
        if (notifying) notify.event('wave_started', 'running', { wave: rule.name });
      }
      // a soaking wave (after a continue-as-new) passes the loop below at once: its targets have ended
      if (c.waveStates[i] === 'running' || c.waveStates[i] === 'soaking') {
        setState(c.isPaused ? 'paused' : 'running');
        for (;;) {
          const failed = targets.filter((t) => t.state === 'failed').length;
          const isHalting = failed > allowed || c.rollbackReason !== null;
          const running = targets.filter((t) => t.state === 'running').length;
          if (!isHalting && !c.isPaused && !isWindowOver()) {
            const free = rule.parallelism - running;
            for (const t of targets.filter((x) => x.state === 'pending').slice(0, Math.max(0, free))) launch(t);
          }
          const busy = targets.some((t) => t.state === 'running');
          if (!busy && (isHalting || isWindowOver() || !targets.some((t) => t.state === 'pending'))) break;
          setState(c.rollbackReason !== null ? 'rolling_back' : c.isPaused ? 'paused' : 'running');
          await maybeContinue();
          await waitForChange();
          if (c.rollbackReason !== null) break;
        }
        if (c.rollbackReason !== null) break;
        // the window closed with targets of this wave left: the firing ends here, the next one goes on
        if (isWindowOver() && targets.some((t) => t.state === 'pending')) return;
        if (rule.soak && targets.filter((t) => t.state === 'failed').length <= allowed && patched(FLEET_WAVE_SOAK)) {
          await soakWave(i, rule.soak, targets, allowed);
          if (c.rollbackReason !== null) break;
        }
        const failed = targets.filter((t) => t.state === 'failed');
        if (failed.length > allowed) {
          c.waveStates[i] = 'halted';
          c.lastError = `wave "${rule.name}" halted: ${failed.length} target${failed.length === 1 ? '' : 's'} failed (${
            Number.isFinite(allowed) ? `${allowed} allowed` : ''
          }): ${failed.map((t) => `${t.name}: ${t.cause ?? 'unknown'}`).join(' | ')}`;
          setState('halted');
          if (notifying) notify.event('wave_halted', 'halted', { wave: rule.name, lastError: c.lastError });
          // `retry` runs the failed targets again; `rollback` reverses what has not contracted
          c.waitSeen = c.retries;
          for (;;) {
            if (c.retries > c.waitSeen || c.rollbackReason !== null) break;
            await maybeContinue();
            await waitForChange();
          }
          if (c.rollbackReason !== null) break;
          // a target the soak failed has its change completed: it is soaked again, not changed again
          const soaked = new Set(c.soakFailed);
          for (const t of failed) Object.assign(t, soaked.has(t.name) ? { state: 'completed', cause: undefined } : { state: 'pending' });
          c.soakFailed = c.soakFailed?.filter((n) => !failed.some((t) => t.name === n));
          c.waveStates[i] = 'running';
          c.lastError = null;
          if (notifying && patched(FLEET_REFUSED_RETRY_NOTIFICATIONS)) notify.event('wave_started', 'running', { wave: rule.name });
          continue;
        }
        c.waveStates[i] = 'completed';
        if (notifying) notify.event('wave_completed', c.state, { wave: rule.name });
      }
      if (rule.approval && i < spec.waves.length - 1 && c.waveStates[i] === 'completed') {
        c.waveStates[i] = 'waiting_approval';
        c.waitSeen = c.approvals;
        if (notifying) notify.state('waiting_approval', { step: rule.name });
      }
      if (c.waveStates[i] === 'waiting_approval') {
        setState('waiting_approval');
        for (;;) {
          if (c.approvals > (c.waitSeen ?? 0) || c.rollbackReason !== null) break;
          await maybeContinue();
          await waitForChange();
        }
        if (c.rollbackReason !== null) break;
        c.waveStates[i] = 'completed';
      }
      c.waveIndex++;
    }
  }

  /**
   * The wave's checks on its completed targets, every `everyMs` until `durationMs` is over (resumed from `c.soak`
   * after a continue-as-new). A breach fails its target; the soak ends early once the wave has more failures than it
   * allows (the wave then halts), or on a rollback.
   */
  async function soakWave(i: number, soak: WaveSoak, targets: FleetTargetRun[], allowed: number): Promise<void> {
    const s = (c.soak ??= { wave: i, until: Date.now() + soak.durationMs, round: 0 });
    c.waveStates[i] = 'soaking';
    for (;;) {
      if (s.nextAt === undefined) {
        const breaches = await soakRound({
          baseQueue,
          fleet: spec.name,
          wave: waveName(i),
          table: changeTables(spec.change)[0] ?? '',
          soak,
          round: ++s.round,
          targets: targets.filter((t) => t.state === 'completed').map((t) => t.name),
          parallelism: spec.waves[i]?.parallelism ?? 1,
        });
        for (const b of breaches) {
          Object.assign(byName.get(b.target) ?? {}, { state: 'failed', cause: b.cause });
          (c.soakFailed ??= []).push(b.target);
        }
        const left = s.until - Date.now();
        if (left <= 0 || targets.filter((t) => t.state === 'failed').length > allowed) break;
        s.nextAt = Date.now() + Math.min(soak.everyMs, left);
      }
      await maybeContinue();
      const waitMs = Math.max(1, s.nextAt - Date.now());
      await condition(() => c.rollbackReason !== null || workflowInfo().historyLength >= eventLimit, waitMs);
      if (c.rollbackReason !== null) break;
      if (Date.now() >= s.nextAt) s.nextAt = undefined;
    }
    c.soak = undefined;
    c.waveStates[i] = 'running';
  }

  /**
   * Every target not yet contracted reverses, newest wave first: a wave's running targets are told to roll back,
   * and the wave before begins once none of them runs. Completed targets are reported as they are.
   */
  async function rollBack(): Promise<FleetResult> {
    setState('rolling_back');
    await condition(() => starting === 0);
    for (let w = spec.waves.length - 1; w >= 0; w--) {
      for (const t of waveTargets(w))
        if (t.state === 'running') signalTarget(t, rollbackSignal, { by: 'fleet', reason: c.rollbackReason ?? undefined });
      for (;;) {
        if (!waveTargets(w).some((t) => t.state === 'running')) break;
        await maybeContinue();
        await waitForChange(false);
      }
    }
    for (const t of c.targets)
      if (t.state === 'pending') Object.assign(t, { state: 'skipped', cause: 'the fleet rolled back before its wave' });
    for (let i = 0; i < c.waveStates.length; i++)
      if (c.waveStates[i] !== 'completed')
        c.waveStates[i] = waveTargets(i).some((t) => t.state === 'rolled_back') ? 'rolled_back' : 'skipped';
    setState('rolled_back');
    if (notifying) notify.state('rolled_back', { rollbackReason: c.rollbackReason, lastError: c.lastError });
    await notify.settled();
    return { state: c.state, progress: progress() };
  }
}
