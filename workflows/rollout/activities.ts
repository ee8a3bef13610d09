/**
 * The rollout activities as the workflow calls them: one retry policy per
 * purpose. Deterministic (proxies only; activities/rollout/index.ts does the work).
 */
import { proxyRoutedActivities } from '../activity-route';
import type { RolloutActivities } from '../../activities/rollout/index';

// Schema changes are short and must not run twice at once: a few quick retries.
// Activities heartbeat every few seconds: a worker that dies mid-step is noticed within heartbeatTimeout.
export const ddl = proxyRoutedActivities<RolloutActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 30 },
});
// A rollback must finish: retry until it does (operators see the attempts in the UI).
export const revert = proxyRoutedActivities<RolloutActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
export const checks = proxyRoutedActivities<RolloutActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10 },
});
