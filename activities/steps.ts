import { ApplicationFailure } from '@temporalio/activity';
import type { PoolClient } from 'pg';
import { withTransaction } from '../db/pool';
import * as sql from '../db/rollouts';
import { setDdlTimeouts, setSessionDdlTimeouts, resetSessionTimeouts, releaseSnapshot } from '../db/ddl';
import { DEFAULT_LOCK_TIMEOUT_MS } from '../spec/fields';
import type { RolloutStep, BackfillSpec } from '../spec';
import { qualifiedName } from '../plan/ids';
import { FailureType } from '../plan/failures';
import { stepModule } from '../steps';
import { changesSchema, ApplyPhase, StepContext } from '../steps/types';
import { stepActions } from '../steps/actions';
import type { ActivityDeps } from './backfill';
import { classifyPgError, failure, pgMessage } from './errors';
import { heartbeating } from './heartbeat';
import { stepHash } from './lineage';

export interface StepInput {
  rolloutId: number;
  workflowId: string;
  rolloutName: string;
  stepId: string;
  step: RolloutStep;
  /** Qualified schema.table. */
  table: string;
  allSteps: { id: string; table: string; step: RolloutStep }[];
  actor?: string;
  /** The rollout's lockTimeoutMs: how long DDL waits for its table lock before giving up (and being retried). The step's own wins; 3s when neither is set. */
  lockTimeoutMs?: number;
}
export interface StepApplied {
  alreadyDone: boolean;
  /** The first of `backfills` (what workflows recorded before `backfills` existed read). */
  backfill?: BackfillSpec;
  /** What the workflow runs after the apply, in order. */
  backfills?: BackfillSpec[];
  detail?: Record<string, unknown>;
}

/** What the runner is doing, for the error message when it fails. */
interface Doing {
  doing: string;
  phase?: ApplyPhase<unknown>;
}

/**
 * A lock timeout or a lost connection is worth retrying: a plain Error, so
 * Temporal retries with backoff. Anything else the database rejected will be
 * rejected again: non-retryable, naming the step and quoting Postgres.
 */
function stepError(err: unknown, i: StepInput, doing: string): unknown {
  if (err instanceof ApplicationFailure) return err;
  const cls = classifyPgError(err);
  if (cls === 'lock') return new Error(`step "${i.stepId}" (${i.step.kind} on ${i.table}): ${doing} could not get its lock within the lock timeout; live traffic holds ${i.table}, will retry`);
  if (cls === 'transient') return err;
  return failure(FailureType.StepSqlError, `step "${i.stepId}" (${i.step.kind} on ${i.table}): ${doing} failed: ${pgMessage(err)}`, {
    stepId: i.stepId,
    code: (err as { code?: string })?.code ?? null,
  });
}

function lockTimeoutOf(i: StepInput): number {
  return (i.step as { lockTimeoutMs?: number }).lockTimeoutMs ?? i.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
}

/**
 * The step runner: applies and reverts any step kind through its module
 * (steps/<kind>/apply.ts), exactly once. Every apply phase and revert holds
 * the step's row lock (a retry or a racing attempt waits, then sees what
 * happened) and runs under lock_timeout; a phase's effect and its record in
 * the step row commit together, so a retried apply resumes after the last
 * finished phase. Knows roles, never kinds.
 */
export function createStepRunner({ pool, logger }: ActivityDeps) {
  function contextFor(i: StepInput, db: PoolClient, row: Pick<sql.StepRow, 'detail' | 'phase' | 'effect'>, stepId = i.stepId): StepContext<{ kind: string }> {
    const ref = i.allSteps.find((s) => s.id === stepId);
    const step = stepId === i.stepId ? i.step : ref!.step;
    const table = qualifiedName(stepId === i.stepId ? i.table : ref!.table);
    const indexOf = (id: string) => {
      const n = i.allSteps.findIndex((s) => s.id === id);
      return n < 0 ? 999 : n;
    };
    return {
      db,
      rolloutId: i.rolloutId,
      workflowId: i.workflowId,
      rolloutName: i.rolloutName,
      actor: i.actor,
      stepId,
      step,
      table,
      allSteps: i.allSteps.map((s) => ({ id: s.id, table: qualifiedName(s.table), step: s.step })),
      detail: row.detail ?? {},
      phase: row.phase,
      effect: row.effect,
      lockTimeoutMs: lockTimeoutOf(i),
      indexOf,
      contextOf: (other) => contextFor(i, db, { detail: {}, phase: null, effect: 'none' }, other),
      fail: (field, message) => failure(FailureType.StepSetupError, `step "${stepId}": ${field}: ${message}`, { stepId, field }),
    };
  }

  /** One transaction that sets lock_timeout, locks the step's row and then runs `fn`. Errors as they came. */
  async function stepTransaction<T>(i: StepInput, fn: (db: PoolClient, row: sql.StepRow) => Promise<T>): Promise<T> {
    return withTransaction(pool, async (db) => {
      await setDdlTimeouts(db, lockTimeoutOf(i));
      const row = await sql.lockStep(db, { rolloutId: i.rolloutId, stepId: i.stepId, kind: i.step.kind, table: qualifiedName(i.table), transformHash: stepHash(i.step) });
      return fn(db, row);
    });
  }

  async function inStepTransaction<T>(i: StepInput, at: Doing, fn: (db: PoolClient, row: sql.StepRow) => Promise<T>): Promise<T> {
    const stop = heartbeating();
    try {
      return await stepTransaction(i, fn);
    } catch (err) {
      throw stepError(err, i, at.doing);
    } finally {
      stop();
    }
  }

  /**
   * A plain connection in autocommit, lock_timeout set for its session, for
   * statements that cannot run in a transaction, while `stepDb` (the step's
   * transaction) keeps the row locked but no snapshot a concurrent build would wait for.
   */
  async function onPlainConnection<T>(i: StepInput, stepDb: PoolClient, fn: (db: PoolClient) => Promise<T>): Promise<T> {
    await releaseSnapshot(stepDb);
    const conn = await pool.connect();
    let broken: unknown;
    try {
      await setSessionDdlTimeouts(conn, lockTimeoutOf(i));
      return await fn(conn);
    } catch (err) {
      if (classifyPgError(err) === 'transient') broken = err;
      throw err;
    } finally {
      if (!broken) await resetSessionTimeouts(conn).catch((err: unknown) => (broken = err));
      conn.release(broken ? true : undefined);
    }
  }

  function logApplied(i: StepInput, detail: Record<string, unknown>): void {
    logger.info({ rollout: i.rolloutName, step: i.stepId, kind: i.step.kind, table: i.table, transformHash: stepHash(i.step), ...detail }, `step ${i.stepId} (${i.step.kind} on ${i.table}) applied`);
  }

  async function recordApplied(db: PoolClient, i: StepInput, detail: Record<string, unknown>): Promise<void> {
    await sql.recordRolloutEvent(db, { workflowId: i.workflowId, event: 'step_applied', subject: i.stepId, detail: { kind: i.step.kind, table: i.table, transformHash: stepHash(i.step), ...detail }, actor: i.actor });
  }

  async function applyStep(i: StepInput): Promise<StepApplied> {
    const actions = stepActions(i.step.kind);
    const phases = actions.phases;
    const hash = stepHash(i.step);
    // built before any DDL: an invalid backfill must not leave a half-done step behind
    const backfills = actions.backfills?.(contextFor(i, undefined as unknown as PoolClient, { detail: {}, phase: null, effect: 'none' })) ?? [];
    const result = (alreadyDone: boolean, detail: Record<string, unknown>): StepApplied => ({ alreadyDone, detail, ...(backfills.length ? { backfill: backfills[0], backfills } : {}) });

    const at: Doing = { doing: 'apply' };
    for (;;) {
      let outcome: { isDone: boolean; alreadyDone: boolean; detail: Record<string, unknown> };
      const stop = heartbeating();
      try {
        outcome = await stepTransaction(i, async (db, row) => {
          if (row.effect === 'applied') return { isDone: true, alreadyDone: true, detail: row.detail };
          if (row.effect === 'reverted') throw failure(FailureType.StepSetupError, `step "${i.stepId}" was already reverted in rollout ${i.rolloutId}; a reverted step is not applied again`);
          if (!phases.length) {
            await sql.setStepEffect(db, i.rolloutId, i.stepId, { effect: 'applied', phase: null, detail: {}, transformHash: hash });
            await recordApplied(db, i, {});
            return { isDone: true, alreadyDone: false, detail: {} };
          }
          const next = row.phase === null ? 0 : phases.findIndex((p) => p.name === row.phase) + 1;
          if (next === 0 && row.phase !== null) {
            throw failure(FailureType.StepSetupError, `step "${i.stepId}" (${i.step.kind}) recorded phase "${row.phase}", which this stagefill's ${i.step.kind} does not have (${phases.map((p) => p.name).join(', ')})`);
          }
          const phase = phases[next];
          at.doing = phase.doing ?? phase.name;
          at.phase = phase as ApplyPhase<unknown>;
          const ctx = contextFor(i, db, row);
          // a phase outside a transaction runs while this one holds the step's row lock (it holds no snapshot between statements)
          const added = phase.transactional ? await phase.run(ctx) : await onPlainConnection(i, db, (conn) => phase.run({ ...ctx, db: conn }));
          const detail = { ...(row.phase === null ? {} : row.detail), ...(added ?? {}) };
          const isLast = next === phases.length - 1;
          await sql.setStepEffect(db, i.rolloutId, i.stepId, { effect: isLast ? 'applied' : 'none', phase: phase.name, detail, transformHash: hash });
          if (isLast) await recordApplied(db, i, detail);
          return { isDone: isLast, alreadyDone: false, detail };
        });
      } catch (err) {
        const phase = at.phase;
        if (phase?.recover && !(err instanceof ApplicationFailure) && classifyPgError(err) === 'fatal') {
          const replacement = await inStepTransaction(i, { doing: `undo after ${at.doing} failed` }, async (db, row) => {
            const e = await phase.recover!(err, contextFor(i, db, row));
            // the phase's recover undid what the earlier phases left: the step is untouched again
            if (e) await sql.setStepEffect(db, i.rolloutId, i.stepId, { effect: 'none', phase: null, detail: {} });
            return e;
          });
          if (replacement) throw replacement;
        }
        throw stepError(err, i, at.doing);
      } finally {
        stop();
      }
      if (outcome.isDone) {
        if (!outcome.alreadyDone) logApplied(i, outcome.detail);
        return result(outcome.alreadyDone, outcome.detail);
      }
    }
  }

  /** `held`: the kind's revert refused to go on (RevertHold); nothing was reverted, the workflow holds for `retry`. */
  async function revertStep(i: StepInput): Promise<{ alreadyReverted: boolean; held?: string }> {
    const role = stepModule(i.step.kind).role;
    const actions = stepActions(i.step.kind);
    const hash = stepHash(i.step);
    const table = qualifiedName(i.table);
    return inStepTransaction(i, { doing: 'revert' }, async (db, row): Promise<{ alreadyReverted: boolean; held?: string }> => {
      if (row.effect === 'reverted') return { alreadyReverted: true };
      // nothing reached the database (a finished phase counts as something)
      const isUntouched = changesSchema(role) && row.effect === 'none' && row.phase === null;
      if (actions.irreversible && !isUntouched) {
        throw failure(FailureType.Irreversible, `step "${i.stepId}" (${i.step.kind} on ${i.table}) ${actions.irreversible} and cannot be reverted; restore from a backup if you must`);
      }
      if (!isUntouched && actions.revert) {
        const ctx = contextFor(i, db, row);
        const outside = actions.isRevertOutsideTransaction;
        const isOutside = typeof outside === 'function' ? outside(i.step) : outside === true;
        const outcome = isOutside ? await onPlainConnection(i, db, (conn) => actions.revert!({ ...ctx, db: conn })) : await actions.revert(ctx);
        if (outcome && 'hold' in outcome) {
          await sql.recordRolloutEvent(db, { workflowId: i.workflowId, event: 'step_revert_held', subject: i.stepId, detail: { kind: i.step.kind, table: i.table, reason: outcome.hold }, actor: i.actor });
          logger.warn({ rollout: i.rolloutName, step: i.stepId, kind: i.step.kind, table: i.table, reason: outcome.hold }, `step ${i.stepId} (${i.step.kind} on ${i.table}) not reverted: ${outcome.hold}`);
          return { alreadyReverted: false, held: outcome.hold };
        }
      }
      await sql.setStepEffect(db, i.rolloutId, i.stepId, { effect: 'reverted', phase: null, detail: row.detail });
      await sql.setStepState(db, { rolloutId: i.rolloutId, stepId: i.stepId, kind: i.step.kind, table, state: 'reverted', actor: i.actor });
      await sql.recordRolloutEvent(db, { workflowId: i.workflowId, event: 'step_reverted', subject: i.stepId, detail: { kind: i.step.kind, table: i.table, transformHash: hash, wasApplied: !isUntouched }, actor: i.actor });
      logger.info({ rollout: i.rolloutName, step: i.stepId, kind: i.step.kind, table: i.table, transformHash: hash, wasApplied: !isUntouched }, `step ${i.stepId} (${i.step.kind} on ${i.table}) reverted`);
      return { alreadyReverted: isUntouched };
    });
  }

  return { applyStep, revertStep };
}
