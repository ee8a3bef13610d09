import fs from 'node:fs';
import { NativeConnection, Worker, Runtime, DefaultLogger, LogEntry, WorkerOptions, makeTelemetryFilterString } from '@temporalio/worker';
import type { Logger } from 'pino';
import { Pool } from 'pg';
import { createPool, ping, detectTransactionPooler } from '../db/pool';
import { migrate } from '../db/migrate';
import { createActivities, ActivityDeps } from '../activities';
import { WorkerConfig, redactUrl } from './config';
import { createMetrics, Metrics, backlogFromPool } from './metrics';

export interface StagefillWorker {
  worker: Worker;
  pool: Pool;
  connection: NativeConnection;
  metrics: Metrics;
  /** Resolves when the worker has stopped (after shutdown() or a fatal error). */
  run(): Promise<void>;
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
  const workflowSource = bundle
    ? { workflowBundle: { codePath: bundle } }
    : { workflowsPath: require.resolve('../workflows') };
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.STAGEFILL_TASK_QUEUE,
    ...workflowSource,
    activities: createActivities({ pool, logger: logger.child({ component: 'activity' }), metrics, faults: opts.faults }),
    maxConcurrentActivityTaskExecutions: config.STAGEFILL_MAX_CONCURRENT_ACTIVITIES,
    // Cancellation reaches a lease on its next heartbeat: keep that under a second.
    maxHeartbeatThrottleInterval: '1 second',
    defaultHeartbeatThrottleInterval: '1 second',
    // SIGTERM: stop polling, let leases finish their chunk (they end within a lease), then exit.
    shutdownGraceTime: '20 seconds',
    ...opts.overrides,
  });
  return {
    worker,
    pool,
    connection,
    metrics,
    async run() {
      try {
        await worker.run();
      } finally {
        await connection.close().catch(() => {});
        await pool.end().catch(() => {});
      }
    },
    shutdown: () => worker.shutdown(),
  };
}
