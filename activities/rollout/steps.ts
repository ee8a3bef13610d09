import { ApplicationFailure } from '@temporalio/activity';
import type { PoolClient } from 'pg';
import { withTransaction } from '../../db/pool';
import * as sql from '../../db/rollout/rollouts';
import * as audit from '../../db/rollout/audit';
import { setDdlTimeouts, setSessionDdlTimeouts, resetSessionTimeouts } from '../../db/rollout/ddl';
import { FailureType } from '../../core/common/failures';
import { stepModule } from '../../steps';
import type { ApplyPhase, StepActions, StepContext } from '../../steps/types';
import { changesSchema } from '../../steps/types';
import { stepActions } from '../../steps/actions';
import type { ActivityDeps } from '../backfill/index';
import { classifyPgError, failure } from '../../db/errors';
import { heartbeating } from '../heartbeat';
import { stepHash } from '../backfill/lineage';
import type { StepInput, StepApplied, StepFinished, Reverted } from './step-types';
import { stepError, lockTimeoutOf } from './step-types';
import { qualifiedName } from '../../core/common/table-name';
import { itemAt } from '../../core/common/checked';

interface Outcome {
  isDone: boolean;
  alreadyDone: boolean;
  detail: Record<string, unknown>;
}

/** What the runner is doing, for the error message when it fails. */
interface Doing {
  doing: string;
  phase?: ApplyPhase<unknown>;
}

/**
 * The step runner: applies and reverts any step kind through its module
 * (steps/<kind>/apply.ts), exactly once. Every apply phase and revert runs
 * under lock_timeout and holds the step's row lock (a retry or a racing
 * attempt waits, then sees what happened) — or, outside a transaction, the
 * step's advisory lock; a phase's effect and its record in the step row commit
 * together, so a retried apply resumes after the last finished phase. Knows roles, never kinds. `actionsOf` is the registry
 * (tests hand it a kind of their own).
 */
export function createStepRunner({ pool, logger }: ActivityDeps, actionsOf: (kind: string) => StepActions<{ kind: string }> = stepActions) {
  function contextFor(
    i: StepInput,
    db: PoolClient,
    row: Pick<sql.StepRow, 'detail' | 'phase' | 'effect'>,
    stepId = i.stepId,
  ): StepContext<{ kind: string }> {
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
      actionsOf,
      fail: (field, message) => failure(FailureType.StepSetupError, `step "${stepId}": ${field}: ${message}`, { stepId, field }),
    };
  }

  /** One transaction that sets lock_timeout, locks the step's row and then runs `fn`. Errors as they came. */
  async function stepTransaction<T>(i: StepInput, fn: (db: PoolClient, row: sql.StepRow) => Promise<T>): Promise<T> {
    return withTransaction(pool, async (db) => {
      await setDdlTimeouts(db, lockTimeoutOf(i));
      const row = await sql.lockStep(db, {
        rolloutId: i.rolloutId,
        stepId: i.stepId,
        kind: i.step.kind,
        table: qualifiedName(i.table),
        transformHash: stepHash(i.step),
      });
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

  /** A plain connection in autocommit, lock_timeout set for its session, for statements that cannot run in a transaction. */
  async function onPlainConnection<T>(i: StepInput, fn: (db: PoolClient) => Promise<T>): Promise<T> {
    const conn = await pool.connect();
    let broken: unknown;
    // a checked-out client whose connection is lost (a restart, a dropped connection, pg_terminate_backend) emits
    // 'error'; unheard, that event crashes the whole worker (found by `npm run chaos -- --minutes 30 --seed 2026`).
    // The statement in flight rejects anyway, and the session is not pooled again
    const onLost = (err: unknown) => (broken ??= err);
    conn.on('error', onLost);
    try {
      await setSessionDdlTimeouts(conn, lockTimeoutOf(i));
      return await fn(conn);
    } catch (err) {
      // whatever failed, the session may hold state (an advisory lock, a setting): it does not go back to the pool
      broken = err;
      throw err;
    } finally {
      if (!broken) await resetSessionTimeouts(conn).catch((err: unknown) => (broken = err));
      conn.removeListener('error', onLost);
      conn.release(broken ? true : undefined);
    }
  }

  function logApplied(i: StepInput, detail: Record<string, unknown>): void {
    logger.info(
      { rollout: i.rolloutName, step: i.stepId, kind: i.step.kind, table: i.table, transformHash: stepHash(i.step), ...detail },
      `step ${i.stepId} (${i.step.kind} on ${i.table}) applied`,
    );
  }

  async function recordApplied(db: PoolClient, i: StepInput, detail: Record<string, unknown>): Promise<void> {
    await audit.recordRolloutEvent(db, {
      workflowId: i.workflowId,
      event: 'step_applied',
      subject: i.stepId,
      detail: { kind: i.step.kind, table: i.table, transformHash: stepHash(i.step), ...detail },
      actor: i.actor,
    });
  }

  /** The index of the phase after the recorded one. */
  function nextPhase(i: StepInput, phases: ApplyPhase<unknown>[], row: sql.StepRow): number {
    if (row.phase === null) return 0;
    const n = phases.findIndex((p) => p.name === row.phase);
    if (n < 0)
      throw failure(
        FailureType.StepSetupError,
        `step "${i.stepId}" (${i.step.kind}) recorded phase "${row.phase}", which this stagefill's ${i.step.kind} does not have (${phases.map((p) => p.name).join(', ')})`,
      );
    return n + 1;
  }

  /** The finished phase and what it added, in the step's row; after the last phase the step is applied and audited. Same transaction as the phase's DDL when it has one. */
  async function recordPhase(
    db: PoolClient,
    i: StepInput,
    phases: ApplyPhase<unknown>[],
    n: number,
    row: sql.StepRow,
    added: Record<string, unknown> | void,
  ): Promise<Outcome> {
    const detail = { ...(row.phase === null ? {} : row.detail), ...(added ?? {}) };
    const isLast = n === phases.length - 1;
    await sql.setStepEffect(db, i.rolloutId, i.stepId, {
      effect: isLast ? 'applied' : 'none',
      phase: itemAt(phases, n, 'phase').name,
      detail,
      transformHash: stepHash(i.step),
    });
    if (isLast) await recordApplied(db, i, detail);
    return { isDone: isLast, alreadyDone: false, detail };
  }

  /**
   * A `transactional: false` phase: on a plain connection, with no transaction
   * of ours open (CREATE INDEX CONCURRENTLY waits for every transaction older
   * than its snapshots, ours included). Attempts serialize on a session
   * advisory lock instead of the row lock, re-read the row under it, and
   * record the phase in a short step transaction afterwards. A crash between
   * the statement and the record runs the phase again: it checks the catalog.
   */
  async function runOutsideTransaction(
    i: StepInput,
    phases: ApplyPhase<unknown>[],
    n: number,
    previous: string | null,
  ): Promise<Outcome | undefined> {
    return onPlainConnection(i, async (conn) => {
      await sql.lockStepSession(conn, i.rolloutId, i.stepId, lockTimeoutOf(i));
      try {
        const row = await sql.getStep(conn, i.rolloutId, i.stepId);
        if (!row || row.effect !== 'none' || row.phase !== previous) return undefined; // another attempt moved on: look again
        const added = await itemAt(phases, n, 'phase').run(contextFor(i, conn, row));
        return await stepTransaction(i, async (db, locked) => {
          if (locked.effect !== 'none' || locked.phase !== previous) return undefined; // reverted meanwhile: the next look says so
          return recordPhase(db, i, phases, n, locked, added);
        });
      } finally {
        await sql.unlockStepSession(conn, i.rolloutId, i.stepId);
      }
    });
  }

  async function applyStep(i: StepInput): Promise<StepApplied> {
    const actions = actionsOf(i.step.kind);
    const phases = actions.phases as ApplyPhase<unknown>[];
    // built before any DDL: an invalid backfill must not leave a half-done step behind
    const backfills =
      actions.backfills?.(contextFor(i, undefined as unknown as PoolClient, { detail: {}, phase: null, effect: 'none' })) ?? [];
    const result = (alreadyDone: boolean, detail: Record<string, unknown>): StepApplied => ({
      alreadyDone,
      detail,
      ...(backfills.length ? { backfill: backfills[0], backfills } : {}),
      ...(actions.afterBackfills ? { finishAfterBackfills: true } : {}),
    });

    const at: Doing = { doing: 'apply' };
    for (;;) {
      let outcome: Outcome | undefined;
      const stop = heartbeating();
      try {
        const looked = await stepTransaction(i, async (db, row): Promise<Outcome | { outside: number; previous: string | null }> => {
          if (row.effect === 'applied') return { isDone: true, alreadyDone: true, detail: row.detail };
          if (row.effect === 'reverted')
            throw failure(
              FailureType.StepSetupError,
              `step "${i.stepId}" was already reverted in rollout ${i.rolloutId}; a reverted step is not applied again`,
            );
          if (!phases.length) {
            await sql.setStepEffect(db, i.rolloutId, i.stepId, {
              effect: 'applied',
              phase: null,
              detail: {},
              transformHash: stepHash(i.step),
            });
            await recordApplied(db, i, {});
            return { isDone: true, alreadyDone: false, detail: {} };
          }
          const n = nextPhase(i, phases, row);
          const phase = itemAt(phases, n, 'phase');
          at.doing = phase.doing ?? phase.name;
          at.phase = phase;
          // leave this transaction first: nothing of ours may stay open while it runs
          if (!phase.transactional) return { outside: n, previous: row.phase };
          return recordPhase(db, i, phases, n, row, await phase.run(contextFor(i, db, row)));
        });
        outcome = 'outside' in looked ? await runOutsideTransaction(i, phases, looked.outside, looked.previous) : looked;
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
      if (outcome?.isDone) {
        if (!outcome.alreadyDone) logApplied(i, outcome.detail);
        return result(outcome.alreadyDone, outcome.detail);
      }
    }
  }

  /**
   * The kind's work after its backfills (`afterBackfills`: alterColumn's concurrent index builds and validations),
   * on a plain connection under the step's advisory lock, so no transaction of ours is open while it runs. Only for
   * an applied step: one reverted meanwhile has nothing to finish.
   */
  async function finishStep(i: StepInput): Promise<StepFinished> {
    const actions = actionsOf(i.step.kind);
    if (!actions.afterBackfills) return { done: [] };
    const stop = heartbeating();
    try {
      const done = await onPlainConnection(i, async (conn) => {
        await sql.lockStepSession(conn, i.rolloutId, i.stepId, lockTimeoutOf(i));
        try {
          const row = await sql.getStep(conn, i.rolloutId, i.stepId);
          if (!row || row.effect !== 'applied') return [];
          return await actions.afterBackfills!(contextFor(i, conn, row));
        } finally {
          await sql.unlockStepSession(conn, i.rolloutId, i.stepId);
        }
      });
      if (done.length)
        logger.info(
          { rollout: i.rolloutName, step: i.stepId, kind: i.step.kind, table: i.table, done },
          `step ${i.stepId} (${i.step.kind} on ${i.table}) finished after its backfills`,
        );
      return { done };
    } catch (err) {
      throw stepError(err, i, 'the work after its backfills');
    } finally {
      stop();
    }
  }

  /** `held`: the kind's revert refused to go on (RevertHold); nothing was reverted, the workflow holds for `retry`. */
  async function revertStep(i: StepInput): Promise<Reverted> {
    const role = stepModule(i.step.kind).role;
    const actions = actionsOf(i.step.kind);
    const hash = stepHash(i.step);
    const table = qualifiedName(i.table);

    /** What the revert must do given the row: nothing (already reverted or untouched), or refuse (irreversible). */
    function decide(row: Pick<sql.StepRow, 'effect' | 'phase'>): { isReverted: boolean; isUntouched: boolean } {
      if (row.effect === 'reverted') return { isReverted: true, isUntouched: true };
      // nothing reached the database (a finished phase counts as something)
      const isUntouched = changesSchema(role) && row.effect === 'none' && row.phase === null;
      if (actions.irreversible && !isUntouched) {
        throw failure(
          FailureType.Irreversible,
          `step "${i.stepId}" (${i.step.kind} on ${i.table}) ${actions.irreversible} and cannot be reverted; restore from a backup if you must`,
        );
      }
      return { isReverted: false, isUntouched };
    }

    /** The revert refused (createTable: someone else's data): audited, the step stays as it is. */
    async function recordHeld(db: PoolClient, reason: string): Promise<Reverted> {
      await audit.recordRolloutEvent(db, {
        workflowId: i.workflowId,
        event: 'step_revert_held',
        subject: i.stepId,
        detail: { kind: i.step.kind, table: i.table, reason },
        actor: i.actor,
      });
      logger.warn(
        { rollout: i.rolloutName, step: i.stepId, kind: i.step.kind, table: i.table, reason },
        `step ${i.stepId} (${i.step.kind} on ${i.table}) not reverted: ${reason}`,
      );
      return { alreadyReverted: false, held: reason };
    }

    async function recordReverted(db: PoolClient, row: sql.StepRow, isUntouched: boolean): Promise<Reverted> {
      await sql.setStepEffect(db, i.rolloutId, i.stepId, { effect: 'reverted', phase: null, detail: row.detail });
      await sql.setStepState(db, { rolloutId: i.rolloutId, stepId: i.stepId, kind: i.step.kind, table, state: 'reverted', actor: i.actor });
      await audit.recordRolloutEvent(db, {
        workflowId: i.workflowId,
        event: 'step_reverted',
        subject: i.stepId,
        detail: { kind: i.step.kind, table: i.table, transformHash: hash, wasApplied: !isUntouched },
        actor: i.actor,
      });
      logger.info(
        { rollout: i.rolloutName, step: i.stepId, kind: i.step.kind, table: i.table, transformHash: hash, wasApplied: !isUntouched },
        `step ${i.stepId} (${i.step.kind} on ${i.table}) reverted`,
      );
      return { alreadyReverted: isUntouched };
    }

    const outside = actions.isRevertOutsideTransaction;
    if (!(typeof outside === 'function' ? outside(i.step) : outside)) {
      return inStepTransaction(i, { doing: 'revert' }, async (db, row) => {
        const d = decide(row);
        if (d.isReverted) return { alreadyReverted: true };
        const hold = !d.isUntouched && actions.revert ? await actions.revert(contextFor(i, db, row)) : undefined;
        if (hold) return recordHeld(db, hold.hold);
        return recordReverted(db, row, d.isUntouched);
      });
    }
    // as runOutsideTransaction: serialized on the advisory lock, no transaction of ours open while the revert runs
    const stop = heartbeating();
    try {
      return await onPlainConnection(i, async (conn) => {
        await sql.lockStepSession(conn, i.rolloutId, i.stepId, lockTimeoutOf(i));
        try {
          const row = await sql.getStep(conn, i.rolloutId, i.stepId);
          const d = decide(row ?? { effect: 'none', phase: null });
          if (d.isReverted) return { alreadyReverted: true };
          const hold = row && !d.isUntouched && actions.revert ? await actions.revert(contextFor(i, conn, row)) : undefined;
          if (hold) return await stepTransaction(i, (db) => recordHeld(db, hold.hold));
          return await stepTransaction(i, async (db, locked) => recordReverted(db, locked, d.isUntouched));
        } finally {
          await sql.unlockStepSession(conn, i.rolloutId, i.stepId);
        }
      });
    } catch (err) {
      throw stepError(err, i, 'revert');
    } finally {
      stop();
    }
  }

  return { applyStep, revertStep, finishStep };
}
