import fs from 'node:fs';
import type { LogEntry, WorkerOptions } from '@temporalio/worker';
import { NativeConnection, Worker, Runtime, DefaultLogger, makeTelemetryFilterString } from '@temporalio/worker';
import type { Logger } from 'pino';
import type { Pool } from 'pg';
import { createPool, ping, detectTransactionPooler } from '../db/pool';
import { migrate } from '../db/migrate';
import type { ActivityDeps } from '../activities';
import { createActivities } from '../activities';
import { parseSecrets } from '../activities/webhook-signature';
import type { WorkerConfig } from './config';
import { deploymentVersion } from './config';
import type { Metrics } from './metrics';
import { createMetrics, backlogFromPool } from './metrics';
import { readRouting } from './routing';
import { routingProblem } from '../core/common/worker-routing';
import { redactUrl } from '../devstack/inherited';

export interface StagefillWorker {
  worker: Worker;
  pool: Pool;
  connection: NativeConnection;
  metrics: Metrics;
  /** Worker Versioning: this worker's deployment and build id (undefined: unversioned). */
  version?: { deploymentName: string; buildId: string };
  /** Resolves when the worker has stopped (after shutdown() or a fatal error). */
  run(): Promise<void>;
  /** With STAGEFILL_SET_CURRENT_VERSION: resolves once this build is the deployment's current version. */
  madeCurrent?: Promise<void>;
  /**
   * Resolves (once run() has started) with why this worker gets no work from its task queue (it belongs to another
   * deployment version; logged as a warning, stagefill_worker_gets_no_work = 1), or undefined when it gets work.
   */
  routing: Promise<string | undefined>;
  shutdown(): void;
}

let runtimeInstalled = false;

/**
 * The SDK's own logs go through pino, so one stream holds everything. The
 * Runtime is process-wide and can be installed once; later calls reuse it.
 */
export function installRuntime(logger: Logger, sdkMetricsPort?: number): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const sdkLog = logger.child({ component: 'temporal-sdk' });
  Runtime.install({
    logger: new DefaultLogger('WARN', (entry: LogEntry) => {
      const level = entry.level.toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
      sdkLog[level]({ ...entry.meta }, entry.message);
    }),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} },
      metrics: sdkMetricsPort ? { prometheus: { bindAddress: `127.0.0.1:${sdkMetricsPort}` } } : undefined,
    },
  });
}

export interface CreateWorkerOptions {
  config: WorkerConfig;
  logger: Logger;
  /** Pre-built workflow bundle (tests build one per run); otherwise bundled from source at start. */
  workflowBundlePath?: string;
  metrics?: Metrics;
  faults?: ActivityDeps['faults'];
  overrides?: Partial<WorkerOptions>;
}

export async function connectTemporal(config: WorkerConfig): Promise<NativeConnection> {
  const tls =
    config.TEMPORAL_TLS_CERT && config.TEMPORAL_TLS_KEY
      ? {
          clientCertPair: { crt: fs.readFileSync(config.TEMPORAL_TLS_CERT), key: fs.readFileSync(config.TEMPORAL_TLS_KEY) },
          serverRootCACertificate: config.TEMPORAL_TLS_CA ? fs.readFileSync(config.TEMPORAL_TLS_CA) : undefined,
          serverNameOverride: config.TEMPORAL_TLS_SERVER_NAME,
        }
      : undefined;
  return NativeConnection.connect({ address: config.TEMPORAL_ADDRESS, tls });
}

export async function createStagefillWorker(opts: CreateWorkerOptions): Promise<StagefillWorker> {
  const { config, logger } = opts;
  const pool = createPool({ url: config.DATABASE_URL, max: config.STAGEFILL_DB_POOL_SIZE, applicationName: 'stagefill-worker' });
  try {
    await ping(pool);
  } catch (err) {
    await pool.end().catch(() => {});
    throw new Error(`cannot reach PostgreSQL at ${redactUrl(config.DATABASE_URL)}: ${(err as Error).message}`);
  }
  const pooler = await detectTransactionPooler(pool).catch(async (err: Error) => {
    await pool.end().catch(() => {});
    throw new Error(`cannot check the sessions of PostgreSQL at ${redactUrl(config.DATABASE_URL)}: ${err.message}`);
  });
  if (pooler) {
    await pool.end().catch(() => {});
    throw new Error(
      `DATABASE_URL ${redactUrl(config.DATABASE_URL)} goes through a transaction-mode pooler (${pooler.reason}); ` +
        'stagefill keeps session state (prepared statements, session settings) and needs its own sessions: ' +
        'point DATABASE_URL at PostgreSQL directly (the "direct" connection string, usually port 5432 rather than 6432) or at a pool in session mode (PgBouncer pool_mode = session)',
    );
  }
  await migrate(pool);
  let connection: NativeConnection;
  try {
    connection = await connectTemporal(config);
  } catch (err) {
    await pool.end().catch(() => {});
    throw new Error(`cannot reach Temporal at ${config.TEMPORAL_ADDRESS}: ${(err as Error).message.split('\n')[0]}`);
  }
  const metrics = opts.metrics ?? createMetrics();
  // the backlog gauges (rows planned / remaining per unfinished backfill) read this worker's pool at scrape time
  metrics.setBacklogSource(backlogFromPool(pool));
  const bundle = opts.workflowBundlePath ?? config.STAGEFILL_WORKFLOW_BUNDLE;
  const workflowSource = bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: require.resolve('../workflows') };
  const version = deploymentVersion(config);
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.STAGEFILL_TASK_QUEUE,
    ...workflowSource,
    activities: createActivities({
      pool,
      logger: logger.child({ component: 'activity' }),
      metrics,
      faults: opts.faults,
      notify: {
        webhookUrl: config.STAGEFILL_WEBHOOK_URL,
        webhookSecrets: config.STAGEFILL_WEBHOOK_SECRET ? parseSecrets(config.STAGEFILL_WEBHOOK_SECRET) : undefined,
        webUiUrl: config.STAGEFILL_WEB_UI_URL ?? config.TEMPORAL_UI,
      },
    }),
    maxConcurrentActivityTaskExecutions: config.STAGEFILL_MAX_CONCURRENT_ACTIVITIES,
    // Cancellation reaches a lease on its next heartbeat: keep that under a second.
    maxHeartbeatThrottleInterval: '1 second',
    defaultHeartbeatThrottleInterval: '1 second',
    // SIGTERM: stop polling, let leases finish their chunk (they end within a lease), then exit.
    shutdownGraceTime: '20 seconds',
    // Versioned: workflows declare their behaviour (workflows/index.ts); the default covers any that does not.
    ...(version
      ? { workerDeploymentOptions: { version, useWorkerVersioning: true, defaultVersioningBehavior: 'AUTO_UPGRADE' as const } }
      : {}),
    ...opts.overrides,
  });
  let resolveCurrent: () => void = () => {};
  const madeCurrent = version && config.STAGEFILL_SET_CURRENT_VERSION ? new Promise<void>((r) => (resolveCurrent = r)) : undefined;
  let resolveRouting: (problem: string | undefined) => void = () => {};
  const routing = new Promise<string | undefined>((r) => (resolveRouting = r));
  return {
    routing,
    worker,
    pool,
    connection,
    metrics,
    version,
    madeCurrent,
    async run() {
      const running = worker.run();
      // a queue that belongs to another deployment version sends this worker nothing: say so now, not after an idle hour
      void checkRouting(connection, config, version, metrics, logger).then(resolveRouting, (err: Error) => {
        logger.debug({ err }, 'could not read the task queue routing');
        resolveRouting(undefined);
      });
      if (version && madeCurrent) {
        void makeCurrentVersion(connection, config.TEMPORAL_NAMESPACE, version, logger, () =>
          ['INITIALIZED', 'RUNNING'].includes(worker.getState()),
        ).then(resolveCurrent, (err: unknown) =>
          logger.error(
            { err, ...version },
            `could not make build ${version.buildId} the current version of deployment ${version.deploymentName}: ${(err as Error).message}`,
          ),
        );
      }
      try {
        await running;
      } finally {
        await connection.close().catch(() => {});
        await pool.end().catch(() => {});
      }
    },
    shutdown: () => worker.shutdown(),
  };
}

/**
 * Makes this worker's build the current version of its deployment (what
 * `temporal worker deployment set-current-version` does). The server knows a
 * version only once its pollers have reached it, so this retries for a
 * minute; already current is success.
 */
export async function makeCurrentVersion(
  connection: NativeConnection,
  namespace: string,
  version: { deploymentName: string; buildId: string },
  logger: Logger,
  stillRunning: () => boolean,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const d = await connection.workflowService.describeWorkerDeployment({ namespace, deploymentName: version.deploymentName });
      const current = d.workerDeploymentInfo?.routingConfig?.currentDeploymentVersion;
      if (current?.buildId === version.buildId && current?.deploymentName === version.deploymentName) return;
      await connection.workflowService.setWorkerDeploymentCurrentVersion({
        namespace,
        deploymentName: version.deploymentName,
        buildId: version.buildId,
        conflictToken: d.conflictToken,
        identity: `stagefill-worker@${version.buildId}`,
      });
      logger.info(version, `build ${version.buildId} is now the current version of deployment ${version.deploymentName}`);
      return;
    } catch (err) {
      if (Date.now() > deadline || !stillRunning()) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Warns (and sets stagefill_worker_gets_no_work) when the task queue routes its work to another deployment version. */
async function checkRouting(
  connection: NativeConnection,
  config: WorkerConfig,
  version: { deploymentName: string; buildId: string } | undefined,
  metrics: Metrics,
  logger: Logger,
): Promise<string | undefined> {
  const { current } = await readRouting(connection.workflowService, config.TEMPORAL_NAMESPACE, config.STAGEFILL_TASK_QUEUE);
  const problem = routingProblem(config.STAGEFILL_TASK_QUEUE, version, current, config.STAGEFILL_SET_CURRENT_VERSION);
  if (!problem || !current) return undefined;
  metrics.workerGetsNoWork.set(
    { task_queue: config.STAGEFILL_TASK_QUEUE, deployment: current.deploymentName, current_build: current.buildId },
    1,
  );
  logger.warn({ taskQueue: config.STAGEFILL_TASK_QUEUE, current, worker: version ?? 'unversioned' }, problem);
  return problem;
}
