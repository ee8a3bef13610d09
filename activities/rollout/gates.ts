import type { Pool } from 'pg';
import { withTransaction } from '../../db/pool';
import * as sql from '../../db/rollout/audit';
import type { CheckResult } from '../../core/rollout/checks';
import { evaluateCheck } from '../../core/rollout/checks';
import type { ActivityDeps } from '../backfill/index';
import { classifyPgError, pgMessage } from '../../db/errors';
import { heartbeating } from '../heartbeat';
import type { GateCheck } from '../../core/common/fields';
import { qualifiedName } from '../../core/common/table-name';

export interface RunChecksInput {
  rolloutId: number;
  workflowId: string;
  stepId: string;
  table: string;
  checks: GateCheck[];
  baselines: Record<string, string | null>;
  attempt: number;
}

/** How long one check query may run. */
export const CHECK_STATEMENT_TIMEOUT_MS = 60_000;

/**
 * Each check's query, read-only under the check timeout, against its bound or
 * baseline. A dropped connection throws (Temporal retries the activity); a
 * query that fails or times out is the check's failure.
 */
export async function evaluateChecks(
  pool: Pool,
  stepId: string,
  checks: GateCheck[],
  baselines: Record<string, string | null>,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    let value: string | null = null;
    let error: string | undefined;
    try {
      value = await withTransaction(pool, (db) => sql.readOnlyScalar(db, check.sql, CHECK_STATEMENT_TIMEOUT_MS));
    } catch (err) {
      const code = (err as { code?: string })?.code;
      // a dropped connection says nothing about the check: let Temporal retry
      if (classifyPgError(err) === 'transient' && code !== '57014') throw err;
      error = pgMessage(err);
    }
    results.push(evaluateCheck(stepId, baselines, check, value, error));
  }
  return results;
}

/** Gates and soaks: each check query read-only, its result recorded and measured. */
export function createGateActivities({ pool, logger, metrics }: ActivityDeps) {
  async function runChecks(i: RunChecksInput): Promise<CheckResult[]> {
    const stop = heartbeating();
    const table = qualifiedName(i.table);
    let results: CheckResult[];
    try {
      results = await evaluateChecks(pool, i.stepId, i.checks, i.baselines);
      await withTransaction(pool, async (db) => {
        for (const r of results) {
          await sql.recordGateResult(db, { rolloutId: i.rolloutId, stepId: i.stepId, attempt: i.attempt, ...r });
        }
      });
    } finally {
      stop();
    }
    for (const r of results) {
      metrics?.gateResults.inc({ kind: 'rollout', table, check: r.name, result: r.ok ? 'pass' : 'fail' });
      metrics?.gateDivergence.set(
        { kind: 'rollout', table, check: r.name },
        r.deviation !== null && Number.isFinite(r.deviation) ? r.deviation : r.ok ? 0 : 1,
      );
    }
    logger.info(
      { workflowId: i.workflowId, step: i.stepId, attempt: i.attempt, results },
      `gate ${i.stepId}: ${results.filter((r) => r.ok).length}/${results.length} checks passed`,
    );
    return results;
  }

  return { runChecks };
}
