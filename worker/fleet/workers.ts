import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { NativeConnection, WorkerOptions } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import { createPool } from '../../db/pool';
import { migrate } from '../../db/migrate';
import { createActivities } from '../../activities';
import type { TargetConfig } from '../../activities/fleet/control';
import { createFleetControlActivities } from '../../activities/fleet/control';
import { fleetControlQueue, fleetProcessIdentity, fleetProcessQueue, targetQueue } from '../../core/fleet/ids';
import { fleetProcessesPolling } from './processes';
import type { WorkerConfig } from '../config';
import { ConfigError } from '../config';
import type { Metrics } from '../metrics';
import { createMetrics } from '../metrics';
import { redactUrl } from '../../devstack/inherited';

/**
 * The targets a worker process serves for fleets. Their workflows (the fleet,
 * each target's run, its rollout or backfill) run on the base queue, in the
 * process's one workflow Worker (worker/run.ts): a Worker per target running
 * workflows put a sandbox per target in one process, and under load an
 * activation cut off by the sandbox's timeout crashed Node. Here only
 * activities: per target an activity-only Worker on the target's queue
 * (`<queue>@<target>`, where a target's change sends its database activities,
 * workflows/activity-route.ts) with the target's pool, so a target's
 * activities run only in a process that has its connection; and one on the
 * fleet's control queue (which targets exist, their tables' shapes), and one
 * on this process's own control queue: processes with different targets
 * files each answer for their own, and the fleet gathers every process's
 * answer (workflows/fleet/served.ts). All share one Temporal connection. The pools together open at most
 * STAGEFILL_FLEET_MAX_CONNECTIONS, and close their connections when idle.
 */
export interface FleetWorkers {
  targets: TargetConfig[];
  /** This process's key: it polls the control queue as `fleetProcessIdentity(key)` and answers on `fleetProcessQueue(base, key)`. */
  processKey: string;
  /** Each target's pool: a share of STAGEFILL_FLEET_MAX_CONNECTIONS, idle connections closed after 30 s. */
  poolOf(target: string): Pool;
  run(): Promise<void>;
  shutdown(): void;
}

export interface CreateFleetWorkersOptions {
  config: WorkerConfig;
  logger: Logger;
  connection: NativeConnection;
  targets: TargetConfig[];
  metrics?: Metrics;
  overrides?: Partial<WorkerOptions>;
}

/** Connections per target's pool: an equal share of the process's bound, at most the usual pool size; a share under 2 is refused. */
export function poolShare(config: WorkerConfig, targets: number): number {
  const share = Math.min(config.STAGEFILL_DB_POOL_SIZE, Math.floor(config.STAGEFILL_FLEET_MAX_CONNECTIONS / Math.max(1, targets)));
  if (share < 2)
    throw new ConfigError(
      `STAGEFILL_FLEET_MAX_CONNECTIONS: ${config.STAGEFILL_FLEET_MAX_CONNECTIONS} connections for ${targets} targets leaves under 2 per target; raise it to at least ${2 * targets} or serve fewer targets per worker process (split the targets file)`,
    );
  return share;
}

export async function createFleetWorkers(opts: CreateFleetWorkersOptions): Promise<FleetWorkers> {
  const { config, logger, connection, targets } = opts;
  const share = poolShare(config, targets.length);
  const pools = new Map(targets.map((t) => [t.name, createPool({ url: t.url, max: share, applicationName: `stagefill-fleet:${t.name}` })]));
  const poolOf = (name: string) => {
    const p = pools.get(name);
    if (!p) throw new Error(`no target named "${name}" in this worker's targets file`);
    return p;
  };
  const metrics = opts.metrics ?? createMetrics();
  const base = config.STAGEFILL_TASK_QUEUE;
  const workers: Worker[] = [];
  let isStopping = false;
  const running: Promise<void>[] = [];

  const processKey = newProcessKey();
  const controlActivities = createFleetControlActivities({
    targets,
    poolOf,
    processKey,
    workerProcesses: () => fleetProcessesPolling(connection.workflowService, config.TEMPORAL_NAMESPACE, fleetControlQueue(base)),
  });
  // the shared control queue, polled with an identity naming this process (its pollers list the processes); and this
  // process's own, where only it answers
  for (const [taskQueue, identity] of [
    [fleetControlQueue(base), fleetProcessIdentity(processKey)],
    [fleetProcessQueue(base, processKey), undefined],
  ] as const) {
    const control = await Worker.create({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue,
      activities: controlActivities,
      ...(identity ? { identity } : {}),
      ...opts.overrides,
    });
    workers.push(control);
    running.push(control.run());
  }

  const serveTarget = async (t: TargetConfig) => {
    const pool = poolOf(t.name);
    // stagefill's own schema in the target, before its first activity runs. A target that does not answer fails its
    // activities with the connection's error, retried by their policies: the change waits with the cause on its
    // pending activity (the Temporal UI, `describe`), and goes on when the target answers
    let migrated: Promise<void> | undefined;
    const ensureMigrated = () =>
      (migrated ??= migrate(pool).then(
        () => {},
        (err: Error) => {
          migrated = undefined;
          throw new Error(`target ${t.name} (${redactUrl(t.url)}) does not answer: ${err.message}`);
        },
      ));
    await ensureMigrated().catch((err: Error) =>
      logger.warn({ target: t.name, err: err.message }, 'target not reachable; its activities retry until it answers'),
    );
    const activities = createActivities({
      pool,
      logger: logger.child({ component: 'activity', target: t.name }),
      metrics,
      notify: { webhookUrl: config.STAGEFILL_WEBHOOK_URL, webUiUrl: config.STAGEFILL_WEB_UI_URL ?? config.TEMPORAL_UI },
    });
    const afterMigrate = Object.fromEntries(
      Object.entries(activities).map(([name, fn]) => [
        name,
        async (...args: unknown[]) => {
          await ensureMigrated();
          return (fn as (...a: unknown[]) => unknown)(...args);
        },
      ]),
    );
    if (isStopping) return;
    // activities only: no workflow sandbox per target
    const w = await Worker.create({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: targetQueue(base, t.name),
      activities: afterMigrate,
      maxConcurrentActivityTaskExecutions: config.STAGEFILL_MAX_CONCURRENT_ACTIVITIES,
      // a target's queue is quiet most of the time: two long polls each, not the default ten
      maxConcurrentActivityTaskPolls: 2,
      maxHeartbeatThrottleInterval: '1 second',
      defaultHeartbeatThrottleInterval: '1 second',
      shutdownGraceTime: '20 seconds',
      ...opts.overrides,
    });
    workers.push(w);
    const run = w.run();
    if (isStopping) w.shutdown();
    await run;
  };
  for (const t of targets) running.push(serveTarget(t));

  return {
    targets,
    processKey,
    poolOf,
    async run() {
      try {
        await Promise.all(running);
      } finally {
        await Promise.all([...pools.values()].map((p) => p.end().catch(() => {})));
      }
    },
    shutdown() {
      isStopping = true;
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}

/** A key naming this worker process among the fleet's: host, pid and a random part (a restarted process is a new one). */
function newProcessKey(): string {
  const host =
    os
      .hostname()
      .replace(/[^A-Za-z0-9_.-]/g, '_')
      .slice(0, 40) || 'host';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}
