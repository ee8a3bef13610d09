/**
 * Webhook notifications: which run states are worth one, who receives it and
 * what it says. Pure: the workflow picks the event (workflows/notify.ts), the
 * activity adds the worker's settings and posts the body (activities/notify.ts).
 */

/**
 * How a delivery is retried: a few quick attempts, then given up (a
 * notification must never hold a run for long). The first retry waits a
 * whole second: Temporal waits about that long before any activity retry,
 * so a shorter first interval would not be what happens (and docs/operations.md,
 * which a unit test holds to these figures, would not say the truth).
 */
export const DELIVERY_RETRY = { initialIntervalMs: 1_000, backoffCoefficient: 2, maximumIntervalMs: 5_000, maximumAttempts: 5 } as const;

/** The waits between a delivery's attempts under `DELIVERY_RETRY`, in ms (one fewer than the attempts). */
export function deliveryRetryGapsMs(policy: typeof DELIVERY_RETRY = DELIVERY_RETRY): number[] {
  return Array.from({ length: policy.maximumAttempts - 1 }, (_, i) =>
    Math.min(policy.initialIntervalMs * policy.backoffCoefficient ** i, policy.maximumIntervalMs),
  );
}

/** What an operator hears about, in the order of a run's life. */
export const NOTIFY_EVENTS = [
  'awaiting_approval',
  'held',
  'finished',
  'failed',
  'rolled_back',
  'cancelled',
  // a fleet's waves (`wave` names it): one started, completed, or halted by its failed targets
  'wave_started',
  'wave_completed',
  'wave_halted',
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** A spec's `notify:` block. */
export interface NotifySettings {
  webhook: string;
  /** Only these events go to `webhook`; every event when absent. */
  on?: NotifyEvent[];
}

/** The event a run entering `state` is worth, or undefined for states nobody needs to hear about (running, paused, …). */
export function eventOfState(state: string): NotifyEvent | undefined {
  switch (state) {
    case 'completed':
    case 'window_closed': // a scheduled run's window ended: its run is over, the next one continues
      return 'finished';
    case 'failed':
    case 'refused':
      return 'failed';
    case 'rolled_back':
      return 'rolled_back';
    case 'held':
      return 'held';
    case 'waiting_approval':
      return 'awaiting_approval';
    case 'cancelled':
      return 'cancelled';
    default:
      return undefined;
  }
}

/**
 * The reason that belongs to an event: the rollback's for a rollback, the
 * error for a failure or a hold, none for a finished run (an old error that a
 * `retry` got past is not its reason) or an approval.
 */
export function reasonFor(event: NotifyEvent, r: { lastError?: string | null; rollbackReason?: string | null }): string | null {
  switch (event) {
    case 'rolled_back':
    case 'cancelled':
      return r.rollbackReason ?? r.lastError ?? null;
    case 'failed':
    case 'held':
    case 'wave_halted':
      return r.lastError ?? null;
    case 'finished':
    case 'awaiting_approval':
    case 'wave_started':
    case 'wave_completed':
      return null;
  }
}

/** What the workflow knows about an event (deterministic: workflow time, ids, the spec). */
export interface NotifyEventInput {
  /** Stable across the delivery's retries: receivers dedupe on it. */
  id: string;
  event: NotifyEvent;
  state: string;
  kind: 'backfill' | 'rollout' | 'fleet';
  name: string;
  /** A fleet's wave events: the wave's name (absent from every other event). */
  wave?: string;
  workflowId: string;
  runId: string;
  tables: string[];
  step: string | null;
  reason: string | null;
  /** When the run entered the state (ISO 8601). */
  at: string;
}

/** The JSON body POSTed to each webhook; `text` is what Slack (and Mattermost, Teams' Slack mode, …) shows. */
export interface NotificationBody extends NotifyEventInput {
  /** The run in the Temporal Web UI, or null when the worker knows no Web UI address. */
  url: string | null;
  text: string;
}

/** The event id: the workflow id and run id, the event and its number within the run. */
export function notificationId(workflowId: string, runId: string, event: NotifyEvent, seq: number): string {
  return `${workflowId}/${runId}/${event}/${seq}`;
}

/** Where an event goes: the spec's webhook (if it wants the event), and the worker's, each once. */
export function notificationTargets(event: NotifyEvent, spec: NotifySettings | undefined, workerWebhook: string | undefined): string[] {
  const targets: string[] = [];
  if (spec && (!spec.on || spec.on.includes(event))) targets.push(spec.webhook);
  if (workerWebhook && !targets.includes(workerWebhook)) targets.push(workerWebhook);
  return targets;
}

/** The run's page in the Temporal Web UI. */
export function webUiLink(webUiUrl: string, namespace: string, workflowId: string, runId: string): string {
  const base = webUiUrl.replace(/\/+$/, '');
  return `${base}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}/${encodeURIComponent(runId)}/history`;
}

/** An http(s) URL a webhook can be POSTed to. */
export function isWebhookUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.hostname !== '';
  } catch {
    return false;
  }
}

const MAX_REASON = 2000;
const MAX_TEXT_REASON = 300;

const EMOJI: Record<NotifyEvent, string> = {
  awaiting_approval: ':raised_hand:',
  held: ':double_vertical_bar:',
  finished: ':white_check_mark:',
  failed: ':x:',
  rolled_back: ':leftwards_arrow_with_hook:',
  cancelled: ':no_entry_sign:',
  wave_started: ':arrow_forward:',
  wave_completed: ':white_check_mark:',
  wave_halted: ':octagonal_sign:',
};

/** Slack's mrkdwn reserves &, < and >: user text (names, SQL errors) is escaped. */
function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** What happened, in words, after "stagefill rollout *name* on table". */
function what(e: NotifyEventInput): string {
  const step = e.step ? ` at step "${e.step}"` : '';
  switch (e.event) {
    case 'awaiting_approval':
      return `waits for approval${step}: \`stagefill approve ${e.workflowId}\``;
    case 'held':
      return `is held${step} for an operator (\`stagefill retry\` or \`stagefill rollback\`)`;
    case 'finished':
      return e.state === 'completed' ? 'finished' : `stopped (${e.state.replace(/_/g, ' ')})`;
    case 'failed':
      return e.state === 'refused' ? 'was refused' : 'failed';
    case 'rolled_back':
      return 'rolled back';
    case 'cancelled':
      return 'was cancelled';
    case 'wave_started':
      return `started wave "${e.wave ?? '?'}"`;
    case 'wave_completed':
      return `completed wave "${e.wave ?? '?'}"`;
    case 'wave_halted':
      return `halted in wave "${e.wave ?? '?'}" (\`stagefill retry\` or \`stagefill rollback\`)`;
  }
}

/** The one-line Slack message: emoji, kind and name, tables, what happened, the reason, the link. */
export function notificationText(e: NotifyEventInput, url: string | null): string {
  const tables = e.tables.length ? ` on ${e.tables.join(', ')}` : '';
  const reason = e.reason ? `: ${clip(e.reason.replace(/\s+/g, ' '), MAX_TEXT_REASON)}` : '';
  const link = url ? ` <${url}|open in Temporal>` : '';
  return `${EMOJI[e.event]} stagefill ${e.kind} *${slackEscape(e.name)}*${slackEscape(tables)} ${slackEscape(what(e))}${slackEscape(reason)}${link}`;
}

/** The body every receiver gets for one event. */
export function notificationBody(e: NotifyEventInput, worker: { webUiUrl?: string; namespace: string }): NotificationBody {
  const url = worker.webUiUrl ? webUiLink(worker.webUiUrl, worker.namespace, e.workflowId, e.runId) : null;
  const reason = e.reason === null ? null : clip(e.reason, MAX_REASON);
  return { ...e, reason, url, text: notificationText({ ...e, reason }, url) };
}
