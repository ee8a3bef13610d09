import type { Pool } from 'pg';
/** A target as the worker read it from its targets file. */
export interface TargetConfig {
  name: string;
  url: string;
  tags: Record<string, string>;
}
import { readTableShapes } from '../../db/fleet/shape';
import type { FleetTarget } from '../../core/fleet/waves';

/**
 * The fleet's control activities, served on the fleet's control queue by a
 * worker that reads the targets file: which targets exist (names and tags
 * only: connection strings never enter a workflow's history) and the shape of
 * each target's tables before the fleet starts.
 */
export interface FleetControlDeps {
  targets: TargetConfig[];
  poolOf(target: string): Pool;
}

export function createFleetControlActivities(deps: FleetControlDeps) {
  return {
    fleetTargets(): Promise<FleetTarget[]> {
      return Promise.resolve(deps.targets.map((t) => ({ name: t.name, tags: t.tags })));
    },

    async fleetTableShapes(input: { tables: string[]; targets: string[] }) {
      return readTableShapes(input.targets, input.tables, (target) => deps.poolOf(target));
    },
  };
}

export type FleetControlActivities = ReturnType<typeof createFleetControlActivities>;
