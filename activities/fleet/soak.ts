import type { ActivityDeps } from '../backfill/index';
import type { CheckResult } from '../../core/rollout/checks';
import type { GateCheck } from '../../core/common/fields';
import { qualifiedName } from '../../core/common/table-name';
import { heartbeating } from '../heartbeat';
import { evaluateChecks } from '../rollout/gates';

export interface WaveChecksInput {
  fleet: string;
  wave: string;
  target: string;
  /** The table the fleet's change touches (the metrics' label). */
  table: string;
  checks: GateCheck[];
  round: number;
}

/**
 * A fleet wave's soak, one round on one target: the checks a rollout's soak
 * step runs (activities/rollout/gates.ts), on the target's queue with its
 * pool. Bounds only, and no audit row: the target's change has ended, and the
 * fleet keeps the breach as the target's cause.
 */
export function createFleetSoakActivities({ pool, logger, metrics }: ActivityDeps) {
  return {
    async runWaveChecks(i: WaveChecksInput): Promise<CheckResult[]> {
      const stop = heartbeating();
      let results: CheckResult[];
      try {
        results = await evaluateChecks(pool, `${i.wave} soak`, i.checks, {});
      } finally {
        stop();
      }
      const table = qualifiedName(i.table);
      for (const r of results) metrics?.gateResults.inc({ kind: 'fleet', table, check: r.name, result: r.ok ? 'pass' : 'fail' });
      logger.info(
        { fleet: i.fleet, wave: i.wave, target: i.target, round: i.round, results },
        `fleet ${i.fleet} wave ${i.wave} soak round ${i.round} on ${i.target}: ${results.filter((r) => r.ok).length}/${results.length} checks passed`,
      );
      return results;
    },
  };
}

export type FleetSoakActivities = ReturnType<typeof createFleetSoakActivities>;
