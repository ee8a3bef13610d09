/**
 * The throttle probe's view of the streaming replicas (activities/backfill/probe.ts
 * reads it each controller step under `maxReplicaLagMs`): each replica's
 * replay lag, and a replica gone from pg_stat_replication reported once per
 * disappearance, in the log and the audit trail (the decision carries it to
 * progress and metrics).
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import * as health from '../../db/backfill/health';
import { recordEvent } from '../../db/backfill/backfills';
import type { ReplicaLagTracker } from '../../core/backfill/replica-lag';
import type { ReplicaLag } from '../../core/backfill/throttle-control';
import type { ReplicaMissingPolicy } from '../../core/backfill/throttle';

/** Reads the replicas' lag at `at` (undefined when the server reports no WAL position: not a primary). */
export type ReplicaWatch = (at: number) => Promise<ReplicaLag[] | undefined>;

export function replicaWatch(
  pool: Pool,
  logger: Logger,
  lag: ReplicaLagTracker,
  run: { table: string; backfill: string; workflowId: string; onReplicaMissing: ReplicaMissingPolicy | undefined },
): ReplicaWatch {
  let reportedMissing = new Set<string>();
  return async (at) => {
    const rep = await health.replication(pool);
    if (!rep.currentLsn) return undefined;
    const replicas = lag.observe(
      at,
      rep.currentLsn,
      rep.rows.map((r) => ({ name: r.name, state: r.state, replayLsn: r.replay_lsn, replayLagMs: r.replay_lag_ms })),
    );
    // reported once per disappearance: the log, the audit trail, and (through the decision) progress and metrics
    const missing = new Set(replicas.filter((r) => r.state === 'missing').map((r) => r.name));
    for (const name of missing) {
      if (reportedMissing.has(name)) continue;
      const policy = run.onReplicaMissing ?? 'hold';
      logger.warn(
        { table: run.table, backfill: run.backfill, replica: name, onReplicaMissing: policy },
        `replica ${name} disappeared from pg_stat_replication (onReplicaMissing: ${policy})`,
      );
      await recordEvent(pool, {
        workflowId: run.workflowId,
        kind: 'backfill',
        subject: name,
        event: 'replica_missing',
        detail: { onReplicaMissing: policy },
      }).catch(() => {});
    }
    reportedMissing = missing;
    return replicas;
  };
}
