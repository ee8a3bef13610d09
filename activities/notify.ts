import { ApplicationFailure, Context } from '@temporalio/activity';
import type { NotifyEventInput, NotifySettings } from '../core/common/notify';
import { notificationBody, notificationTargets } from '../core/common/notify';
import type { ActivityDeps } from './backfill/types';
import { signatureHeaders } from './webhook-signature';

export interface DeliverNotificationInput {
  event: NotifyEventInput;
  /** The spec's `notify:` block, if it has one. */
  notify?: NotifySettings;
}

export interface DeliverNotificationResult {
  /** The receivers that answered 2xx (none when neither the spec nor the worker names one). */
  delivered: string[];
}

/** The failure type of an undelivered notification; a 4xx other than 408/429 is not retried. */
export const WEBHOOK_FAILED = 'WebhookFailed';

const DEFAULT_TIMEOUT_MS = 5_000;

/** A URL for logs: the path of a Slack-style webhook is its secret. */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.length > 1 ? '/…' : '/'}`;
  } catch {
    return '(invalid URL)';
  }
}

/**
 * Posts one run event to its webhooks: the spec's and the worker's. The
 * workflow starts it without waiting on it (workflows/notify.ts) and Temporal
 * retries it; the body's `id` stays the same across retries, so a receiver
 * that got an earlier attempt can drop the repeat.
 */
export function createNotifyActivities(deps: ActivityDeps) {
  const { logger } = deps;
  const cfg = deps.notify ?? {};

  async function post(url: string, body: { id: string }): Promise<{ ok: boolean; permanent: boolean; detail: string }> {
    try {
      const text = JSON.stringify(body);
      // signed per attempt: its own timestamp in the signed content, so a receiver refuses a body replayed later
      const signed = cfg.webhookSecrets?.length
        ? signatureHeaders(cfg.webhookSecrets, encodeURIComponent(body.id), Math.floor(Date.now() / 1000), text)
        : {};
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'stagefill-webhook', ...signed },
        body: text,
        signal: AbortSignal.timeout(cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS),
        redirect: 'error',
      });
      await res.arrayBuffer().catch(() => undefined); // let the connection go back to the pool
      if (res.ok) return { ok: true, permanent: false, detail: String(res.status) };
      const permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
      return { ok: false, permanent, detail: `HTTP ${res.status}` };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      return { ok: false, permanent: false, detail: e.cause?.code ?? e.cause?.message ?? e.message };
    }
  }

  async function deliverNotification(input: DeliverNotificationInput): Promise<DeliverNotificationResult> {
    const info = Context.current().info;
    const targets = notificationTargets(input.event.event, input.notify, cfg.webhookUrl);
    if (!targets.length) return { delivered: [] };
    const body = notificationBody(input.event, { webUiUrl: cfg.webUiUrl, namespace: info.workflowNamespace ?? 'default' });
    const delivered: string[] = [];
    const failed: { url: string; permanent: boolean; detail: string }[] = [];
    for (const url of targets) {
      const r = await post(url, body);
      if (r.ok) delivered.push(url);
      else failed.push({ url, permanent: r.permanent, detail: r.detail });
    }
    if (!failed.length) return { delivered };
    const why = failed.map((f) => `${safeUrl(f.url)}: ${f.detail}`).join('; ');
    logger.info({ id: body.id, attempt: info.attempt, failed: why }, 'webhook delivery failed; Temporal retries it');
    throw ApplicationFailure.create({
      message: `notification ${body.event} not delivered: ${why}`,
      type: WEBHOOK_FAILED,
      // a receiver that refuses the request (a wrong URL: 404, 403) refuses it again
      nonRetryable: failed.every((f) => f.permanent),
    });
  }

  /** Whether this worker has a receiver of its own (STAGEFILL_WEBHOOK_URL): the workflow asks once, as a local activity, and schedules no delivery for nobody. */
  function hasWorkerWebhook(): Promise<boolean> {
    return Promise.resolve(Boolean(cfg.webhookUrl));
  }

  return { deliverNotification, hasWorkerWebhook };
}

export type NotifyActivities = ReturnType<typeof createNotifyActivities>;
