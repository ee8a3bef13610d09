import type { z } from 'zod';
import type { PoolClient } from 'pg';
import type { ApplicationFailure } from '@temporalio/common';
import type { BackfillSpec, GateCheck } from '../core/common/fields';
import type { ShapeChange } from '../core/rollout/views';

/**
 * The shape of one step kind. Each kind is a folder under steps/ with
 *
 *   schema.ts  its zod schema (pure)
 *   plan.ts    its `StepKindModule`: schema, role, describe (pure)
 *   apply.ts   its `StepActions`: apply phases, revert, contract hook (activity side)
 *   sql.ts     its statements (or it uses db/)
 *
 * steps/index.ts registers the pure half (the one list of kinds; the workflow,
 * spec/ and plan/ read it), steps/actions.ts the activity half (typed
 * against that list, so a kind without actions does not compile). The
 * workflow and the step runner (activities/rollout/steps.ts) never name a kind.
 * Type-only imports here: this file is read by the workflow bundle too.
 */

// ---- the pure half -----------------------------------------------------------

/** How the workflow runs a step; the only thing it knows about a kind. */
export type StepRole =
  /** `applyStep` (its phases), then each backfill the apply hands back, one after the other. */
  | 'schema'
  /** A child backfill workflow, from `backfill(step)`. */
  | 'backfill'
  /** Read-only checks once (`gate(step)`); on failure roll back or hold for `retry`. */
  | 'gate'
  /** The checks again and again for a while (`soak(step)`). */
  | 'soak'
  /** Waits for `approve` (`approval(step)`). */
  | 'approval'
  /** Waits out the rollback window, then `applyStep`: the irreversible end, which calls each earlier step's contract hook. */
  | 'contract';

export interface StepPlanContext {
  /** The step's id in the graph. */
  id: string;
  /** Canonical schema.table the step works on. */
  table: string;
  rollbackWindowMs: number;
}

/** What `stagefill plan` says about one step; written to the audit at the rollout start. */
export interface StepPlan {
  /** What the step does, one line. */
  forward: string;
  /** What its revert does, one line. */
  rollback: string;
  /**
   * The strongest table lock the step takes and for how long, e.g.
   * 'ACCESS EXCLUSIVE (catalog only, instant)', 'SHARE UPDATE EXCLUSIVE (concurrent build)', 'none'.
   */
  lock: string;
  /** True when reads and writes of the table carry on while the step runs (no lock held across a scan or rewrite). */
  online: boolean;
  /** False for steps a rollback cannot undo (contract); true when absent. */
  isReversible?: boolean;
}

export interface GateRun {
  checks: GateCheck[];
  onFailure: 'rollback' | 'pause';
}
export interface SoakRun extends GateRun {
  durationMs: number;
  everyMs: number;
}
export interface ApprovalRun {
  timeoutMs: number;
  onTimeout: 'rollback' | 'fail';
}

/** A problem the discriminated union cannot see (a refine over the whole step), reported at steps.<n>.<path>. */
export interface StepProblem {
  path: (string | number)[];
  message: string;
}

/** A zod object with `kind: z.literal(...)`: one option of the rollout step union. */
export type StepSchema = z.ZodDiscriminatedUnionOption<'kind'>;

interface StepKindBase<Schema extends StepSchema> {
  kind: z.infer<Schema>['kind'];
  schema: Schema;
  /** Whole-step rules beyond the object schema (run by the rollout spec's refine). */
  check?(step: z.infer<Schema>): StepProblem[];
  describe(step: z.infer<Schema>, ctx: StepPlanContext): StepPlan;
  /** How the step changes the columns each version sees (for expose). */
  shape?(step: z.infer<Schema>): ShapeChange;
  /** An applied step of this kind opens the rollback window that a later contract waits out (expose). */
  startsRollbackWindow?: boolean;
}

/** Role-specific parts the workflow reads; pure, so the workflow may call them. */
export type StepBehaviour<S> =
  | { role: 'schema' }
  | { role: 'contract' }
  | { role: 'backfill'; backfill(step: S, ctx: { id: string; table: string; rolloutName: string }): BackfillSpec }
  | { role: 'gate'; gate(step: S): GateRun }
  | { role: 'soak'; soak(step: S): SoakRun }
  | { role: 'approval'; approval(step: S): ApprovalRun };

export type StepKindModule<Schema extends StepSchema = StepSchema> = StepKindBase<Schema> & StepBehaviour<z.infer<Schema>>;

/** True for roles whose apply reaches the database: these are reverted on rollback. */
export function changesSchema(role: StepRole): boolean {
  return role === 'schema' || role === 'contract';
}

// ---- the activity half ---------------------------------------------------------

/** One step of the rollout as the runner sees it. */
export interface StepRef<S = unknown> {
  id: string;
  /** Canonical schema.table. */
  table: string;
  step: S;
}

export interface StepContext<S = unknown> {
  /**
   * A transactional phase (and revert, and contract hooks): the step's
   * transaction, with the step's row locked and `lock_timeout` set. A
   * `transactional: false` phase: a plain connection in autocommit with the
   * session's `lock_timeout` set; each statement commits on its own.
   */
  db: PoolClient;
  rolloutId: number;
  workflowId: string;
  rolloutName: string;
  actor?: string;
  stepId: string;
  step: S;
  /** Canonical schema.table. */
  table: string;
  /** Every step of the rollout, spec order, tables canonical. */
  allSteps: StepRef<{ kind: string }>[];
  /** What earlier phases recorded (merged), or, in revert, what the apply recorded. */
  detail: Record<string, unknown>;
  /** The last finished apply phase (null: none); in revert, how far the apply got. */
  phase: string | null;
  /** In revert: whether the apply finished. */
  effect: 'none' | 'applied' | 'reverted';
  lockTimeoutMs: number;
  /** The position of a step in the spec (stable names for triggers and such); 999 for a step not in it. */
  indexOf(stepId: string): number;
  /** The same context (same db) for another step of the rollout: contract hooks run in it. */
  contextOf(stepId: string): StepContext;
  /** The actions registry of this run (steps/actions.ts, or the one a test hands the step runner): contract runs the other steps' hooks through it. */
  actionsOf(kind: string): StepActions<{ kind: string }>;
  /** A non-retryable failure (StepSetupError) naming this step and the field to fix. */
  fail(field: string, message: string): ApplicationFailure;
}

/**
 * A revert that must not go on without an operator (createTable whose table
 * someone else changed or wrote to): the step is not reverted, the rollback
 * holds (state `held`, with `reason`) until `retry` asks for the revert again.
 */
export interface RevertHold {
  hold: string;
}

/** What a phase adds to the step's recorded detail. */
export type PhaseResult = Record<string, unknown> | void;

export interface ApplyPhase<S> {
  /** Recorded in the step row's `phase` once the phase committed; a retried apply resumes after it. */
  name: string;
  /** In error messages: "step x (kind on t): <doing> failed: ...". The name when absent. */
  doing?: string;
  /**
   * true: runs inside the step's transaction (the step's row locked); its effect and the phase record commit together.
   * false: runs on a plain connection in autocommit (CREATE INDEX CONCURRENTLY, ...) with no transaction of the
   * runner open meanwhile; attempts serialize on a session advisory lock, and the phase is recorded in a short
   * transaction afterwards. A crash between its statement and that record runs it again, so it must be idempotent
   * by looking at the catalog first (and drop an INVALID leftover before building again).
   */
  transactional: boolean;
  run(ctx: StepContext<S>): Promise<PhaseResult>;
  /**
   * Called in a new step transaction when `run` failed with a database error.
   * Return the error to raise instead (non-retryable) after undoing what
   * earlier phases left (the runner then resets the step to untouched), or
   * undefined to let the original error go on (retried if it is a lock timeout).
   */
  recover?(err: unknown, ctx: StepContext<S>): Promise<Error | undefined>;
}

/** A phase that runs in the step's transaction and has nothing but its name and what it does. */
export function inTransaction<S>(name: string, run: (ctx: StepContext<S>) => Promise<PhaseResult>): ApplyPhase<S> {
  return { name, transactional: true, run };
}

/** What a contract hook reports, merged into the contract step's detail (lists appended). */
export interface ContractContext<S = unknown> extends StepContext<S> {
  /** Columns of the table right now; hooks that drop or rename keep it current. */
  columns: Set<string>;
  /** The contract step's own `drops`. */
  drops: ReadonlySet<string>;
  /** Adds `item` to the contract detail's list `key` (droppedTriggers, droppedSchemas, droppedColumns, renamed, ...). */
  report(key: string, item: string): void;
}

export interface ContractHooks<S> {
  /**
   * Before anything is dropped, on a plain connection (each statement its own
   * transaction: CREATE INDEX CONCURRENTLY, VALIDATE): build and check what the
   * swap needs. Throwing stops the contract with nothing dropped; a failure of
   * type `ContractHeld` makes the workflow hold the rollout for `retry` or `rollback`.
   * Must be idempotent (a retried contract runs it again).
   */
  prepare?(ctx: ContractContext<S>): Promise<void>;
  /** First pass, spec order: what keeps the old shape alive and what the old columns' dependents need gone (triggers, older views). */
  release?(ctx: ContractContext<S>): Promise<void>;
  /** Second pass, spec order, after the contract step's own drops: the final drops and renames. */
  complete?(ctx: ContractContext<S>): Promise<void>;
  /**
   * Last pass, spec order, after the contract's swap committed (and its validate): on a plain
   * connection in autocommit (lock_timeout set), for statements that cannot run in a
   * transaction (DROP INDEX CONCURRENTLY). Idempotent: a crash runs it again.
   */
  outsideTransaction?(ctx: ContractContext<S>): Promise<void>;
}

export interface StepActions<S> {
  /**
   * Backfills the workflow runs after the apply (role 'schema'). Built before
   * the first phase, so an invalid one leaves nothing half done, and handed
   * back again by a retried apply.
   */
  backfills?(ctx: Omit<StepContext<S>, 'db'>): BackfillSpec[];
  /** In order; none: the step is recorded as applied and nothing else happens. */
  phases: ApplyPhase<S>[];
  /**
   * Once the workflow ran the step's backfills (role 'schema'): on a plain connection in autocommit (each statement
   * its own transaction: CREATE INDEX CONCURRENTLY, VALIDATE), serialized on the step's advisory lock like a
   * `transactional: false` phase. Idempotent: a retry runs it again, so it looks at the catalog first (and drops an
   * INVALID leftover before building again). Returns what it did, for the audit. Absent: nothing after the backfills.
   */
  afterBackfills?(ctx: StepContext<S>): Promise<string[]>;
  /**
   * Undoes whatever the recorded phases did (ctx.phase, ctx.detail, ctx.effect);
   * runs in the step's transaction. Absent: nothing to undo. Not called for a step
   * no phase of which finished.
   */
  revert?(ctx: StepContext<S>): Promise<void | RevertHold>;
  /**
   * The revert runs on a plain connection outside a transaction (DROP INDEX CONCURRENTLY), serialized like a `transactional: false` phase; it must be idempotent.
   * A function: decided per step (a sql step with `transaction: false`).
   */
  isRevertOutsideTransaction?: boolean | ((step: S) => boolean);
  /** Set for irreversible kinds: why ("dropped the old columns"); revert then fails with Irreversible. */
  irreversible?: string;
  /** Called by the contract step for each earlier step of the same table. */
  contract?: ContractHooks<S>;
}
