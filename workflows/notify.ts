import { proxyActivities, proxyLocalActivities, patched, workflowInfo, CancellationScope, log } from '@temporalio/workflow';
import type { NotifyActivities } from '../activities/notify';
import type { NotifySettings, NotifyEvent } from '../core/common/notify';
import { eventOfState, reasonFor, notificationId, notificationTargets, DELIVERY_RETRY } from '../core/common/notify';

/** Patch: runs from before notifications schedule no delivery, so their histories replay unchanged. */
export const WEBHOOK_NOTIFICATIONS = 'webhook-notifications';
/** Patch: a delivery is scheduled only when someone receives it; runs from before scheduled one for every event. */
export const NOTIFY_ONLY_RECEIVERS = 'notify-only-receivers';

// A few quick attempts, then give up: a notification must never hold a run for long (see settled()).
const delivery = proxyActivities<NotifyActivities>({
  startToCloseTimeout: '10 seconds',
  scheduleToCloseTimeout: '1 minute',
  retry: {
    initialInterval: DELIVERY_RETRY.initialIntervalMs,
    backoffCoefficient: DELIVERY_RETRY.backoffCoefficient,
    maximumInterval: DELIVERY_RETRY.maximumIntervalMs,
    maximumAttempts: DELIVERY_RETRY.maximumAttempts,
  },
});

// The worker's own receiver (STAGEFILL_WEBHOOK_URL) is in its environment, which workflow code cannot read: asked
// once per run as a local activity, whose answer is recorded in the history (a marker, not a scheduled activity).
const workerSettings = proxyLocalActivities<NotifyActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 3 },
});

export interface NotifyDetail {
  step?: string | null;
  lastError?: string | null;
  rollbackReason?: string | null;
  /** A fleet's wave event: the wave's name. */
  wave?: string;
}

export interface Notifier {
  /** The run entered `state`: if it is worth an event, deliver one, without waiting for it. */
  state(state: string, detail?: NotifyDetail): void;
  /** Deliver `event` (a fleet's wave events, which no state names) for a run in `state`, without waiting for it. */
  event(event: NotifyEvent, state: string, detail?: NotifyDetail): void;
  /** Resolves once every delivery started has ended (delivered or given up); a run awaits it before it closes. */
  settled(): Promise<void>;
  /** No delivery is running now (for a condition that also waits for something else). */
  isIdle(): boolean;
}

/**
 * A run's webhook notifications. Each event is one activity (activities/notify.ts)
 * that posts to the spec's webhook and the worker's (STAGEFILL_WEBHOOK_URL);
 * an event the spec's webhook does not take is delivered only when the worker
 * has a webhook (asked once per run), so a run that notifies nobody schedules
 * no delivery at all. Deliveries run beside the run and their failures are
 * only logged: a receiver that is down never fails or stops a run. A closing
 * run waits for them (settled), at most the retry policy's minute: a run that
 * closes drops the activities it still has scheduled.
 */
export function notifier(run: {
  kind: 'backfill' | 'rollout' | 'fleet';
  name: string;
  tables: string[];
  notify?: NotifySettings;
}): Notifier {
  const pending = new Set<Promise<void>>();
  let seq = 0;
  let workerHasWebhook: Promise<boolean> | undefined;
  const send = (event: NotifyEvent, state: string, detail: NotifyDetail) => {
    const info = workflowInfo();
    // a rollout's backfill step: the rollout reports (its failure becomes the rollout's rollback)
    if (run.kind === 'backfill' && info.parent) return;
    if (!patched(WEBHOOK_NOTIFICATIONS)) return;
    const id = notificationId(info.workflowId, info.runId, event, ++seq);
    const onlyReceivers = patched(NOTIFY_ONLY_RECEIVERS);
    const input = {
      event: {
        id,
        event,
        state,
        kind: run.kind,
        name: run.name,
        ...(detail.wave !== undefined ? { wave: detail.wave } : {}),
        workflowId: info.workflowId,
        runId: info.runId,
        tables: run.tables,
        step: detail.step || null,
        reason: reasonFor(event, detail),
        at: new Date(Date.now()).toISOString(), // the workflow task's deterministic time
      },
      notify: run.notify,
    };
    const scheduled: Promise<unknown> = onlyReceivers
      ? CancellationScope.nonCancellable(async () => {
          // nobody to receive it, no delivery scheduled: the spec's webhook takes this event, or the worker has one
          if (!notificationTargets(event, run.notify, undefined).length) {
            if (!workerHasWebhook) workerHasWebhook = workerSettings.hasWorkerWebhook();
            if (!(await workerHasWebhook)) return;
          }
          await delivery.deliverNotification(input);
        })
      : CancellationScope.nonCancellable(() => delivery.deliverNotification(input));
    const delivering = scheduled.then(
      () => undefined,
      (err: Error) =>
        log.warn('webhook notification not delivered; the run goes on', {
          id,
          event,
          error: (err.cause as Error | undefined)?.message ?? err.message,
        }),
    );
    pending.add(delivering);
    void delivering.then(() => pending.delete(delivering));
  };
  return {
    state(state, detail = {}) {
      const event: NotifyEvent | undefined = eventOfState(state);
      if (event) send(event, state, detail);
    },
    event(event, state, detail = {}) {
      send(event, state, detail);
    },
    async settled() {
      while (pending.size) await Promise.all([...pending]);
    },
    isIdle() {
      return pending.size === 0;
    },
  };
}
