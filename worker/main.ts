import type { WorkerConfig } from './config';
import { loadWorkerConfig, ConfigError } from './config';
import { createLogger } from './logger';
import { createStagefillWorker, installRuntime } from './run';
import { serveMetrics } from './metrics';
import { freePort } from '../devstack/ports';
import { startFleetWorkers, readTargets } from './fleet/main';

/**
 * `stagefill worker`: polls the task queue until SIGINT/SIGTERM, then drains.
 * Exit codes: 0 after a clean drain, 1 when Temporal or Postgres cannot be reached, 2 for bad configuration.
 */
export async function runWorkerMain(overrides: Partial<Record<keyof WorkerConfig, string>> = {}): Promise<number> {
  let config: WorkerConfig;
  try {
    config = loadWorkerConfig(process.env, overrides);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`stagefill worker: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  let targets;
  try {
    targets = config.STAGEFILL_TARGETS ? readTargets(config) : undefined;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`stagefill worker: ${err.message}\n`);
    return 2;
  }
  const logger = createLogger(config.LOG_LEVEL, 'stagefill-worker');
  const sdkMetricsPort = config.STAGEFILL_METRICS_PORT ? await freePort() : undefined;
  installRuntime(logger, sdkMetricsPort);
  let sw;
  try {
    sw = await createStagefillWorker({ config, logger });
  } catch (err) {
    process.stderr.write(`stagefill worker: ${(err as Error).message}\n`);
    return 1;
  }
  // STAGEFILL_TARGETS: this process also serves the fleet's targets, each on its own task queue
  let fleet;
  try {
    fleet = targets ? await startFleetWorkers(config, logger, targets, sw.metrics) : undefined;
  } catch (err) {
    process.stderr.write(`stagefill worker: ${(err as Error).message}\n`);
    // the main worker never ran: close what it opened
    await sw.connection.close().catch(() => {});
    await sw.pool.end().catch(() => {});
    return 1;
  }
  const server = config.STAGEFILL_METRICS_PORT
    ? await serveMetrics(sw.metrics, config.STAGEFILL_METRICS_PORT, async () => {
        const res = await fetch(`http://127.0.0.1:${sdkMetricsPort}/metrics`);
        return res.text();
      })
    : undefined;
  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    logger.info({ signal: sig }, signals === 1 ? 'draining: finishing in-flight chunks' : 'already draining');
    sw.shutdown();
    fleet?.shutdown();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  logger.info(
    {
      taskQueue: config.STAGEFILL_TASK_QUEUE,
      namespace: config.TEMPORAL_NAMESPACE,
      address: config.TEMPORAL_ADDRESS,
      metricsPort: config.STAGEFILL_METRICS_PORT || undefined,
    },
    'worker started',
  );
  try {
    await Promise.all([sw.run(), fleet?.run()]);
  } catch (err) {
    logger.error({ err }, 'worker stopped with an error');
    return 1;
  } finally {
    server?.close();
  }
  logger.info('worker stopped');
  return 0;
}

if (require.main === module) {
  runWorkerMain().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`stagefill worker: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
