import type { Pool } from 'pg';
/** A target as the worker read it from its targets file. */
export interface TargetConfig {
  name: string;
  url: string;
  tags: Record<string, string>;
}
import { readTableShapes } from '../../db/fleet/shape';
import { ping } from '../../db/pool';
import type { FleetTarget } from '../../core/fleet/waves';
import type { ServedTarget } from '../../core/fleet/served';

/**
 * The fleet's control activities, served by every worker process that reads
 * a targets file: on the shared control queue (`<queue>#fleet`) and on the
 * process's own (`<queue>#fleet:<process>`). Which targets exist (names and
 * tags only: connection strings never enter a workflow's history), which
 * processes serve fleets, and the shape of each target's tables before the
 * fleet starts.
 */
export interface FleetControlDeps {
  targets: TargetConfig[];
  poolOf(target: string): Pool;
  /** This process's key (its own control queue is `fleetProcessQueue(base, processKey)`). */
  processKey?: string;
  /** The keys of the processes polling the shared control queue now (DescribeTaskQueue), this one's among them or not. */
  workerProcesses?(): Promise<string[]>;
}

export function createFleetControlActivities(deps: FleetControlDeps) {
  return {
    /** This process's targets only (fleets started before the targets were gathered from every process ask this). */
    fleetTargets(): Promise<FleetTarget[]> {
      return Promise.resolve(deps.targets.map((t) => ({ name: t.name, tags: t.tags })));
    },

    /** The keys of every worker process serving fleets on this task queue (this one included), sorted. */
    async fleetWorkerProcesses(): Promise<string[]> {
      const seen = deps.workerProcesses ? await deps.workerProcesses() : [];
      return [...new Set([...(deps.processKey ? [deps.processKey] : []), ...seen])].sort();
    },

    /** This process's targets; with `probe`, whether each one's database answers this process (a few at a time). */
    async fleetProcessTargets(input: { probe?: boolean } = {}): Promise<{ process: string; targets: ServedTarget[] }> {
      const out: ServedTarget[] = deps.targets.map((t) => ({ name: t.name, tags: t.tags }));
      if (input.probe) {
        const queue = [...out];
        const probe = async () => {
          for (let t = queue.shift(); t; t = queue.shift()) {
            try {
              await ping(deps.poolOf(t.name));
              t.answers = true;
            } catch (err) {
              t.answers = false;
              t.error = (err as Error).message;
            }
          }
        };
        await Promise.all(Array.from({ length: Math.min(8, out.length) }, probe));
      }
      return { process: deps.processKey ?? 'unknown', targets: out };
    },

    async fleetTableShapes(input: { tables: string[]; targets: string[] }) {
      return readTableShapes(input.targets, input.tables, (target) => deps.poolOf(target));
    },
  };
}

export type FleetControlActivities = ReturnType<typeof createFleetControlActivities>;
