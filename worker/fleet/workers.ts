import { NativeConnection, Worker, bundleWorkflowCode, WorkerOptions } from '@temporalio/worker';
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import { createPool } from '../../db/pool';
import { migrate } from '../../db/migrate';
import { createActivities } from '../../activities';
import { createFleetControlActivities, TargetConfig } from '../../activities/fleet/control';
import { fleetControlQueue, targetQueue } from '../../core/fleet/ids';
import { WorkerConfig, ConfigError } from '../config';
import { createMetrics, Metrics } from '../metrics';
import { redactUrl } from '../../devstack/inherited';

/**
 * The targets a worker process serves for fleets: one Temporal Worker per
 * target on the target's own task queue (`<queue>@<target>`), with its own
 * pool, so the existing rollout and backfill workflows, started there by a
 * fleet, run every activity against that target's database unchanged; and
 * one Worker on the fleet's control queue (which targets exist, their tables'
 * shapes). All share one Temporal connection and one workflow bundle.
 */
export interface FleetWorkers {
  targets: TargetConfig[];
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
  workflowBundlePath?: string;
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
  // one bundle for every target's Worker: bundling per target would cost seconds and memory each
  const bundlePath = opts.workflowBundlePath ?? config.STAGEFILL_WORKFLOW_BUNDLE;
  const workflowBundle = bundlePath
    ? { codePath: bundlePath }
    : { code: (await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: quietBundleLogger(logger) })).code };
  const metrics = opts.metrics ?? createMetrics();
  const base = config.STAGEFILL_TASK_QUEUE;
  const workers: Worker[] = [];
  let isStopping = false;
  const running: Promise<void>[] = [];

  const control = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: fleetControlQueue(base),
    activities: createFleetControlActivities({ targets, poolOf }),
    ...opts.overrides,
  });
  workers.push(control);
  running.push(control.run());

  const serveTarget = async (t: TargetConfig) => {
    const pool = poolOf(t.name);
    // stagefill's own schema in the target; a target that is down is retried until it answers, its queue waits meanwhile
    for (let attempt = 1; !isStopping; attempt++) {
      try {
        await migrate(pool);
        break;
      } catch (err) {
        if (attempt === 1)
          logger.warn({ target: t.name, url: redactUrl(t.url), err: (err as Error).message }, 'target not reachable; retrying every 5 s');
        await new Promise((r) => setTimeout(r, 5000));
      }
    }
    if (isStopping) return;
    const w = await Worker.create({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      taskQueue: targetQueue(base, t.name),
      workflowBundle,
      activities: createActivities({
        pool,
        logger: logger.child({ component: 'activity', target: t.name }),
        metrics,
        notify: { webhookUrl: config.STAGEFILL_WEBHOOK_URL, webUiUrl: config.STAGEFILL_WEB_UI_URL ?? config.TEMPORAL_UI },
      }),
      maxConcurrentActivityTaskExecutions: config.STAGEFILL_MAX_CONCURRENT_ACTIVITIES,
      // a handful of workflows per target at a time: keep each Worker's cache small
      maxCachedWorkflows: 20,
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

function quietBundleLogger(logger: Logger) {
  const l = logger.child({ component: 'bundle' });
  return {
    log: () => {},
    trace: () => {},
    debug: () => {},
    info: () => {},
    warn: (m: string) => l.warn(m),
    error: (m: string) => l.error(m),
  };
}
