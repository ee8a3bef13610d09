import type { Logger } from 'pino';
import { loadTargetsFile, TargetsFileError } from './targets-file';
import type { WorkerConfig } from '../config';
import { ConfigError } from '../config';
import { connectTemporal } from '../run';
import type { Metrics } from '../metrics';
import type { FleetWorkers } from './workers';
import { createFleetWorkers, poolShare } from './workers';
import type { TargetConfig } from '../../activities/fleet/control';

/** The targets file of STAGEFILL_TARGETS, checked against the connection bound; a problem is a ConfigError (exit 2) naming the file and field. */
export function readTargets(config: WorkerConfig): TargetConfig[] {
  let targets;
  try {
    targets = loadTargetsFile(config.STAGEFILL_TARGETS!);
  } catch (err) {
    if (err instanceof TargetsFileError) throw new ConfigError(err.message);
    throw err;
  }
  poolShare(config, targets.length);
  return targets;
}

/** `stagefill worker` with STAGEFILL_TARGETS: serves every target, on a Temporal connection of their own. */
export async function startFleetWorkers(
  config: WorkerConfig,
  logger: Logger,
  targets: TargetConfig[],
  metrics?: Metrics,
): Promise<FleetWorkers & { run(): Promise<void> }> {
  const connection = await connectTemporal(config);
  let fleet: FleetWorkers;
  try {
    fleet = await createFleetWorkers({ config, logger: logger.child({ component: 'fleet' }), connection, targets, metrics });
  } catch (err) {
    await connection.close().catch(() => {});
    throw err;
  }
  logger.info(
    { targets: targets.map((t) => t.name), process: fleet.processKey },
    `serving ${targets.length} fleet target${targets.length === 1 ? '' : 's'}`,
  );
  return {
    ...fleet,
    async run() {
      try {
        await fleet.run();
      } finally {
        await connection.close().catch(() => {});
      }
    },
  };
}
