import { recordEvent } from '../../db/backfill/backfills';
import { readHistory, formatHistory } from '../../client/history';
import { backfillWorkflowId } from '../../core/common/ids';
import { pool, unique, useStack } from './harness';

/**
 * `stagefill history` of a scheduled backfill gathers every firing (each
 * runs under `<prefix>-<timestamp>`), and of a backfill every run under its
 * id (rollout children, replays), without picking up another backfill's.
 */

useStack();

test('a scheduled backfill: every firing; a backfill id: every run; nothing of another backfill', async () => {
  const name = unique('nightly');
  const base = backfillWorkflowId('public.orders', name);
  const prefix = `${base}:scheduled`;
  const firings = [`${prefix}-2026-12-01T01:00:00Z`, `${prefix}-2026-12-02T01:00:00Z`];
  for (const id of firings) {
    await recordEvent(pool, { workflowId: id, kind: 'backfill', event: 'started', actor: 'schedule' });
    await recordEvent(pool, { workflowId: id, kind: 'backfill', event: 'completed' });
  }
  await recordEvent(pool, { workflowId: `${base}:01a2b3c4`, kind: 'backfill', event: 'started', actor: 'rollout' });
  await recordEvent(pool, {
    workflowId: `${backfillWorkflowId('public.orders', `${name}x`)}:scheduled-2026-12-01T01:00:00Z`,
    kind: 'backfill',
    event: 'started',
  });

  const scheduled = await readHistory(pool, prefix);
  expect(scheduled.events.map((e) => [e.workflowId, e.event])).toEqual([
    [firings[0], 'started'],
    [firings[0], 'completed'],
    [firings[1], 'started'],
    [firings[1], 'completed'],
  ]);
  expect(formatHistory(scheduled)).toContain(`(${firings[1]}) backfill completed`);

  const all = await readHistory(pool, base);
  expect(all.events).toHaveLength(5);
  expect(all.events.every((e) => e.workflowId?.startsWith(`${base}:`))).toBe(true);
});
