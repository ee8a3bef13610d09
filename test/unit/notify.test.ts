import fs from 'node:fs';
import path from 'node:path';
import type { NotifyEventInput, NotifyEvent } from '../../core/common/notify';
import {
  eventOfState,
  reasonFor,
  notificationTargets,
  notificationBody,
  notificationId,
  webUiLink,
  isWebhookUrl,
  DELIVERY_RETRY,
  deliveryRetryGapsMs,
} from '../../core/common/notify';
import { parseSpec } from '../../steps/spec';
import { backfillSpec, rejection as problems } from './spec-problems';
import { loadWorkerConfig, ConfigError } from '../../worker/config';

describe('which states are worth a notification', () => {
  test.each([
    ['completed', 'finished'],
    ['window_closed', 'finished'],
    ['failed', 'failed'],
    ['refused', 'failed'],
    ['rolled_back', 'rolled_back'],
    ['held', 'held'],
    ['waiting_approval', 'awaiting_approval'],
    ['cancelled', 'cancelled'],
    ['starting', undefined],
    ['running', undefined],
    ['paused', undefined],
    ['waiting_window', undefined],
    ['rolling_back', undefined],
  ])('%s -> %s', (state, event) => {
    expect(eventOfState(state)).toBe(event);
  });
});

describe('the reason that goes with an event', () => {
  const r = { lastError: 'check "x" got 3, expected eq 0', rollbackReason: 'rollback requested by ana: slow' };
  test.each<[NotifyEvent, typeof r | { lastError: string }, string | null]>([
    ['rolled_back', r, 'rollback requested by ana: slow'],
    ['rolled_back', { lastError: 'boom' }, 'boom'],
    ['cancelled', r, 'rollback requested by ana: slow'],
    ['failed', r, 'check "x" got 3, expected eq 0'],
    ['held', r, 'check "x" got 3, expected eq 0'],
    // a rollout that a retry got past finishes without its old error
    ['finished', r, null],
    ['awaiting_approval', r, null],
  ])('%s', (event, detail, reason) => {
    expect(reasonFor(event, detail)).toBe(reason);
  });
});

describe('who receives an event', () => {
  const spec = { webhook: 'https://team.example/hook' };
  test.each<[string, NotifyEvent, { webhook: string; on?: NotifyEvent[] } | undefined, string | undefined, string[]]>([
    ['nobody configured', 'finished', undefined, undefined, []],
    ['the worker only', 'held', undefined, 'https://ops.example/hook', ['https://ops.example/hook']],
    ['the spec only', 'held', spec, undefined, ['https://team.example/hook']],
    [
      'both: the spec adds to the worker',
      'failed',
      spec,
      'https://ops.example/hook',
      ['https://team.example/hook', 'https://ops.example/hook'],
    ],
    ['the same URL twice: once', 'failed', spec, 'https://team.example/hook', ['https://team.example/hook']],
    ['the spec filters its own events', 'finished', { ...spec, on: ['failed', 'rolled_back'] }, undefined, []],
    [
      'its filter leaves the worker alone',
      'finished',
      { ...spec, on: ['failed'] },
      'https://ops.example/hook',
      ['https://ops.example/hook'],
    ],
    ['an event the filter names', 'rolled_back', { ...spec, on: ['failed', 'rolled_back'] }, undefined, ['https://team.example/hook']],
  ])('%s', (_what, event, specNotify, worker, targets) => {
    expect(notificationTargets(event, specNotify, worker)).toEqual(targets);
  });
});

describe('the body and its Slack text', () => {
  const base: NotifyEventInput = {
    id: notificationId('stagefill-rollout:public.orders:cents', 'run-1', 'rolled_back', 3),
    event: 'rolled_back',
    state: 'rolled_back',
    kind: 'rollout',
    name: 'cents',
    workflowId: 'stagefill-rollout:public.orders:cents',
    runId: 'run-1',
    tables: ['public.orders'],
    step: null,
    reason: 'step "2-gate": check "cents match" got 3, expected eq 0',
    at: '2026-12-02T03:00:00.000Z',
  };
  const ui = { webUiUrl: 'http://127.0.0.1:8233/', namespace: 'default' };

  test('every field, the link to the run and a stable id', () => {
    const body = notificationBody(base, ui);
    expect(body).toMatchObject({
      id: 'stagefill-rollout:public.orders:cents/run-1/rolled_back/3',
      event: 'rolled_back',
      state: 'rolled_back',
      kind: 'rollout',
      name: 'cents',
      workflowId: base.workflowId,
      runId: 'run-1',
      tables: ['public.orders'],
      reason: base.reason,
      at: base.at,
      url: 'http://127.0.0.1:8233/namespaces/default/workflows/stagefill-rollout%3Apublic.orders%3Acents/run-1/history',
    });
    expect(body.text).toBe(
      ':leftwards_arrow_with_hook: stagefill rollout *cents* on public.orders rolled back: step "2-gate": check "cents match" got 3, expected eq 0' +
        ` <${body.url}|open in Temporal>`,
    );
  });

  test.each<[string, Partial<NotifyEventInput>, RegExp]>([
    [
      'a finished backfill',
      { event: 'finished', state: 'completed', kind: 'backfill', reason: null },
      /^:white_check_mark: stagefill backfill \*cents\* on public\.orders finished <http/,
    ],
    ['a closed window', { event: 'finished', state: 'window_closed', kind: 'backfill', reason: null }, /stopped \(window closed\)/],
    [
      'an approval',
      { event: 'awaiting_approval', state: 'waiting_approval', step: '4-approval', reason: null },
      /waits for approval at step "4-approval": `stagefill approve stagefill-rollout:public\.orders:cents`/,
    ],
    ['a hold', { event: 'held', state: 'held', step: '2-gate' }, /is held at step "2-gate" for an operator .*: step "2-gate": check/],
    [
      'a refusal',
      { event: 'failed', state: 'refused', reason: 'table public.orders does not exist' },
      /was refused: table public\.orders does not exist/,
    ],
    ['Slack control characters escaped', { name: 'a<b>&c' }, /\*a&lt;b&gt;&amp;c\*/],
    ['a long reason clipped in the text', { reason: 'x'.repeat(1000) }, /: x{299}… </],
  ])('%s', (_what, patch, text) => {
    expect(notificationBody({ ...base, ...patch }, ui).text).toMatch(text);
  });

  test('without a Web UI address: no link, url null', () => {
    const body = notificationBody(base, { namespace: 'default' });
    expect(body.url).toBeNull();
    expect(body.text).not.toMatch(/open in Temporal/);
  });

  test('a very long reason is clipped in the body too', () => {
    expect(notificationBody({ ...base, reason: 'y'.repeat(5000) }, ui).reason).toHaveLength(2000);
  });

  test('the link escapes the namespace and ids', () => {
    expect(webUiLink('https://temporal.example/ui', 'prod ns', 'a/b', 'r')).toBe(
      'https://temporal.example/ui/namespaces/prod%20ns/workflows/a%2Fb/r/history',
    );
  });
});

describe('configuring webhooks', () => {
  const backfill = backfillSpec;
  const rollout = {
    kind: 'rollout',
    name: 'r',
    table: 'public.orders',
    steps: [{ kind: 'addColumn', column: 'amount_cents', type: 'bigint', up: 'round(amount * 100)::bigint' }, { kind: 'approval' }],
  };

  test('a backfill and a rollout take notify', () => {
    expect(parseSpec({ ...backfill, notify: { webhook: 'https://hooks.example/x' } })).toMatchObject({
      notify: { webhook: 'https://hooks.example/x' },
    });
    expect(parseSpec({ ...rollout, notify: { webhook: 'http://127.0.0.1:9/h', on: ['held', 'rolled_back'] } })).toMatchObject({
      notify: { webhook: 'http://127.0.0.1:9/h', on: ['held', 'rolled_back'] },
    });
  });

  test.each<[string, unknown, RegExp]>([
    [
      'not a URL',
      { webhook: 'hooks.example/x' },
      /^notify\.webhook: notify\.webhook must be an http:\/\/ or https:\/\/ URL.*\(got "hooks\.example\/x"\)/,
    ],
    ['another scheme', { webhook: 'ftp://hooks.example/x' }, /^notify\.webhook: .*must be an http:\/\/ or https:\/\/ URL/],
    ['no webhook', { on: ['held'] }, /^notify\.webhook: webhook is required/],
    [
      'an unknown event',
      { webhook: 'https://h.example', on: ['done'] },
      /^notify\.on\.0: notify\.on lists events out of awaiting_approval, held, finished/,
    ],
    ['no events', { webhook: 'https://h.example', on: [] }, /^notify\.on: notify\.on needs at least one event/],
    ['a misspelt field', { webhook: 'https://h.example', url: 'x' }, /^notify: unknown field "url"/],
  ])('%s', (_what, notify, message) => {
    expect(problems({ ...backfill, notify })).toEqual([expect.stringMatching(message)]);
    expect(problems({ ...rollout, notify })).toEqual([expect.stringMatching(message)]);
  });

  test('isWebhookUrl', () => {
    expect(isWebhookUrl('https://hooks.slack.com/services/T/B/X')).toBe(true);
    expect(isWebhookUrl('http://127.0.0.1:8080/')).toBe(true);
    expect(isWebhookUrl('mailto:ops@example.com')).toBe(false);
    expect(isWebhookUrl('')).toBe(false);
  });

  test('the worker: STAGEFILL_WEBHOOK_URL and the Web UI address, checked', () => {
    const base = { DATABASE_URL: 'postgres://u@localhost:5432/db' };
    const cfg = loadWorkerConfig({ ...base, STAGEFILL_WEBHOOK_URL: 'https://ops.example/hook', TEMPORAL_UI: 'http://127.0.0.1:8233' });
    expect(cfg.STAGEFILL_WEBHOOK_URL).toBe('https://ops.example/hook');
    expect(cfg.STAGEFILL_WEB_UI_URL ?? cfg.TEMPORAL_UI).toBe('http://127.0.0.1:8233');
    expect(() => loadWorkerConfig({ ...base, STAGEFILL_WEBHOOK_URL: 'ops.example' })).toThrow(ConfigError);
    expect(() => loadWorkerConfig({ ...base, STAGEFILL_WEB_UI_URL: 'nope' })).toThrow(/^STAGEFILL_WEB_UI_URL: expected an http/);
  });
});

describe('delivery retries', () => {
  test('the waits between attempts, as docs/operations.md states them', () => {
    const gaps = deliveryRetryGapsMs();
    expect(gaps).toEqual([1_000, 2_000, 4_000, 5_000]);
    const docs = fs.readFileSync(path.join(__dirname, '../../docs/operations.md'), 'utf8').replace(/\s+/g, ' ');
    expect(docs).toContain(`${DELIVERY_RETRY.maximumAttempts} attempts, ${gaps.map((g) => `${g / 1000} s`).join(', ')} apart`);
  });
});
