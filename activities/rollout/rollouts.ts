import type { Queryable } from '../../db/pool';
import { withTransaction } from '../../db/pool';
import * as sql from '../../db/rollout/rollouts';
import * as audit from '../../db/rollout/audit';
import type { KeyedAuditEntry } from '../../db/rollout/audit';
import type { CatalogSnapshot } from '../../db/rollout/catalog';
import { snapshotCatalog, compareCatalogs } from '../../db/rollout/catalog';
import type { RolloutSpec } from '../../steps/spec';
import type { StepDescription } from '../../steps/describe';
import { versionSchemaPattern } from '../../core/rollout/object-names';
import { normalizeGraph } from '../../steps/graph';
import { FailureType } from '../../core/common/failures';
import { stepChecks } from '../../steps';
import type { ActivityDeps } from '../backfill/index';
import { classifyPgError, failure, pgMessage } from '../../db/errors';
import { stepLineage, stepHash } from '../backfill/lineage';
import { CHECK_STATEMENT_TIMEOUT_MS } from './gates';
import { qualifiedName } from '../../core/common/table-name';
import { itemAt } from '../../core/common/checked';

export interface BeginRolloutInput {
  workflowId: string;
  name: string;
  spec: RolloutSpec;
  /** Qualified schema.table: every table the graph touches. */
  tables: string[];
  plan: StepDescription[];
  actor?: string;
}
export interface BeginRolloutResult {
  rolloutId: number;
  /** `${stepId}/${checkName}` for every check with unchanged: true: its value when the rollout began. */
  baselines: Record<string, string | null>;
  resumed: boolean;
}
export type StepState = 'running' | 'completed' | 'failed' | 'held' | 'reverting' | 'reverted' | 'skipped';
export interface CatalogComparison {
  table: string;
  equal: boolean;
  diff: string[];
}

/** A rollout's own bookkeeping: its start (claims, baselines, catalog snapshot), step states, audit events, its finish. */
export function createRolloutBookkeeping({ pool, logger, metrics }: ActivityDeps) {
  async function beginRollout(i: BeginRolloutInput): Promise<BeginRolloutResult> {
    const tables = [...new Set(i.tables.map(qualifiedName))].sort();
    const existing = await sql.findRunningRollout(pool, i.workflowId);
    if (existing) return { rolloutId: Number(existing.id), baselines: existing.baselines, resumed: true };

    const graph = normalizeGraph(i.spec.steps, qualifiedName(i.spec.table));
    // Baselines come first, in their own read-only transaction: nothing is taken if a query is broken.
    const baselines: Record<string, string | null> = {};
    for (const [n, step] of i.spec.steps.entries()) {
      const { id } = itemAt(graph, n, 'step');
      for (const check of stepChecks(step)) {
        if (!check.unchanged) continue;
        const key = `${id}/${check.name}`;
        try {
          baselines[key] = await withTransaction(pool, (db) => audit.readOnlyScalar(db, check.sql, CHECK_STATEMENT_TIMEOUT_MS));
        } catch (err) {
          if (classifyPgError(err) === 'transient') throw err;
          throw failure(
            FailureType.CheckSqlError,
            `step "${id}" check "${check.name}": its baseline query failed at the rollout start: ${pgMessage(err)}; fix checks[].sql`,
          );
        }
      }
    }
    const lineage = Object.fromEntries(graph.map((g, n) => [g.id, stepLineage(itemAt(i.spec.steps, n, 'step'))]));

    return withTransaction(pool, async (db) => {
      await sql.lockRolloutStart(db, i.workflowId);
      const again = await sql.findRunningRollout(db, i.workflowId);
      if (again) return { rolloutId: Number(again.id), baselines: again.baselines, resumed: true };

      const holders = await sql.claimTables(db, tables, i.workflowId, i.name);
      const busy = holders.find((h) => h.workflow_id !== i.workflowId);
      if (busy) {
        throw failure(
          FailureType.TableBusy,
          `table ${busy.table_name} has a rollout running: ${busy.rollout_name} (${busy.workflow_id}); wait for it to finish or roll it back`,
          { table: busy.table_name, workflowId: busy.workflow_id, rolloutName: busy.rollout_name },
        );
      }
      const row = await sql.insertRollout(db, {
        workflowId: i.workflowId,
        name: i.name,
        spec: i.spec,
        tables,
        lineage,
        plan: i.plan,
        baselines,
        actor: i.actor,
      });
      const rolloutId = Number(row.id);
      await sql.insertSteps(
        db,
        rolloutId,
        graph.map((g, n) => ({
          id: g.id,
          kind: g.kind,
          table: qualifiedName(g.table),
          transformHash: stepHash(itemAt(i.spec.steps, n, 'step')),
        })),
      );
      for (const t of tables)
        await sql.saveCatalogSnapshot(db, rolloutId, t, 'before', await snapshotCatalog(db, t, versionSchemaPattern(t)));
      await audit.recordRolloutEvent(db, {
        workflowId: i.workflowId,
        event: 'started',
        detail: { rolloutId, tables, lineage, plan: i.plan, baselines },
        actor: i.actor,
      });
      logger.info({ rollout: i.name, workflowId: i.workflowId, rolloutId, tables }, `rollout ${i.name} started on ${tables.join(', ')}`);
      return { rolloutId, baselines, resumed: false };
    });
  }

  async function recordStepState(i: {
    rolloutId: number;
    workflowId: string;
    stepId: string;
    kind: string;
    table: string;
    state: StepState;
    detail?: unknown;
    actor?: string;
    /** Given by rollouts that keep a durable audit: the event is written once however often the activity runs. */
    auditKey?: string;
  }): Promise<void> {
    await withTransaction(pool, async (db) => {
      await sql.setStepState(db, { ...i, table: qualifiedName(i.table) });
      const event = { event: `step_${i.state}`, subject: i.stepId, detail: i.detail, actor: i.actor };
      if (i.auditKey) await audit.recordKeyedEvents(db, i.workflowId, [{ key: i.auditKey, ...event }]);
      else await audit.recordRolloutEvent(db, { workflowId: i.workflowId, ...event });
    });
  }

  /** Histories recorded before the durable audit call this from signal handlers; kept so they replay and finish. */
  async function recordRolloutEvent(i: {
    rolloutId: number;
    workflowId: string;
    event: string;
    subject?: string;
    detail?: unknown;
    actor?: string;
  }): Promise<void> {
    await audit.recordRolloutEvent(pool, i);
  }

  /**
   * The workflow's audit queue, flushed: each entry carries a key made of the
   * rollout id and the workflow's own sequence number, so a retried flush (the
   * insert committed, the completion was lost) writes nothing twice.
   */
  async function recordRolloutEvents(i: {
    rolloutId: number;
    workflowId: string;
    entries: KeyedAuditEntry[];
  }): Promise<{ written: number }> {
    const written = await withTransaction(pool, (db) => audit.recordKeyedEvents(db, i.workflowId, i.entries));
    return { written };
  }

  async function compareWithBefore(db: Queryable, rolloutId: number, tables: string[], save: boolean): Promise<CatalogComparison[]> {
    const before = await sql.loadCatalogSnapshots<CatalogSnapshot>(db, rolloutId, 'before');
    const out: CatalogComparison[] = [];
    for (const t of tables) {
      const now = await snapshotCatalog(db, t, versionSchemaPattern(t));
      if (save) await sql.saveCatalogSnapshot(db, rolloutId, t, 'after', now);
      const b = before.get(t);
      const diff = b ? compareCatalogs(b, now) : [`${t}: no catalog snapshot was taken at the rollout start`];
      out.push({ table: t, equal: diff.length === 0, diff });
    }
    return out;
  }

  async function finishRollout(i: {
    rolloutId: number;
    workflowId: string;
    state: 'completed' | 'rolled_back' | 'failed' | 'cancelled';
    reason?: string;
    actor?: string;
  }): Promise<{ catalog: CatalogComparison[] }> {
    const result = await withTransaction(pool, async (db) => {
      const row = await sql.lockRollout(db, i.rolloutId);
      if (row.finished_at) {
        // a retried finish: the first one compared and released; say the same again
        await sql.releaseTables(db, i.workflowId);
        return { catalog: row.catalog_check ?? [], isNew: false, tables: row.tables, spec: row.spec as RolloutSpec };
      }
      const catalog = await compareWithBefore(db, i.rolloutId, row.tables, true);
      await sql.finishRolloutRow(db, { rolloutId: i.rolloutId, state: i.state, reason: i.reason, actor: i.actor, catalogCheck: catalog });
      const released = await sql.releaseTables(db, i.workflowId);
      await audit.recordRolloutEvent(db, {
        workflowId: i.workflowId,
        event: i.state,
        detail: { reason: i.reason ?? null, catalog, released },
        actor: i.actor,
      });
      return { catalog, isNew: true, tables: row.tables, spec: row.spec as RolloutSpec };
    });
    // whatever way it ended, its gate gauges go: an alert on them would be about a run that is over
    metrics?.forgetRollout?.(result.tables.map((t: string) => qualifiedName(t)));
    if (result.isNew) {
      if (i.state === 'rolled_back' || i.state === 'cancelled')
        metrics?.rollbacks.inc({ kind: 'rollout', table: qualifiedName(result.spec.table) });
      const unequal = result.catalog.filter((c) => !c.equal);
      const log = i.state === 'rolled_back' && unequal.length ? logger.warn.bind(logger) : logger.info.bind(logger);
      log(
        { workflowId: i.workflowId, rolloutId: i.rolloutId, state: i.state, reason: i.reason, catalog: result.catalog },
        `rollout ${i.state}${i.state === 'rolled_back' ? (unequal.length ? `; catalog differs from before: ${unequal.flatMap((c) => c.diff).join('; ')}` : '; catalog equal to before') : ''}`,
      );
    }
    return { catalog: result.catalog };
  }

  async function catalogDiff(i: { rolloutId: number }): Promise<CatalogComparison[]> {
    const row = await sql.getRollout(pool, i.rolloutId);
    if (!row) throw failure(FailureType.StepSetupError, `rolloutId: rollout ${i.rolloutId} does not exist`);
    return compareWithBefore(pool, i.rolloutId, row.tables, false);
  }

  return { beginRollout, recordStepState, recordRolloutEvent, recordRolloutEvents, finishRollout, catalogDiff };
}
