import type { ActivityDeps } from './backfill/index';
import { createBackfillActivities } from './backfill/index';
import { createRolloutActivities } from './rollout/index';
import { createProbeActivities } from './backfill/probe';
import { createNotifyActivities } from './notify';
import { createFleetSoakActivities } from './fleet/soak';

export type { ActivityDeps } from './backfill/index';

/** Every activity a stagefill worker registers, bound to one pool and logger. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createBackfillActivities(deps),
    ...createRolloutActivities(deps),
    ...createProbeActivities(deps),
    ...createNotifyActivities(deps),
    // a fleet wave's soak checks: served on each target's queue, where the target's pool is
    ...createFleetSoakActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
