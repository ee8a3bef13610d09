/**
 * The failure types stagefill raises (ApplicationFailure.type), in one place
 * for activities, workflows and the client: operators and code tell them
 * apart by these names, so they never drift. Pure.
 */
export const FailureType = {
  /** Another rollout holds one of the tables. */
  TableBusy: 'TableBusy',
  /** A revert of a step that cannot be undone (contract). */
  Irreversible: 'Irreversible',
  /** The database rejected a step's statement (not a lock timeout: those are retried). */
  StepSqlError: 'StepSqlError',
  /** The step cannot run as written (a missing column, an invalid backfill, a reverted step applied again). */
  StepSetupError: 'StepSetupError',
  /** Existing rows break the constraint a step adds. */
  StepValidationFailed: 'StepValidationFailed',
  /** Contract would drop an object of an old column without its counterpart on the new one: the rollout holds, nothing dropped. */
  ContractHeld: 'ContractHeld',
  /** A gate's baseline query failed at the rollout start. */
  CheckSqlError: 'CheckSqlError',
  /** The workflow: the rollout could not start. */
  RolloutRefused: 'RolloutRefused',
  /** The workflow: a step failed without a rollback (approval onTimeout: fail, a gate on pause). */
  RolloutFailed: 'RolloutFailed',
  /** The fleet workflow: its targets or waves could not be resolved, or a target's table differs (onShapeMismatch: refuse). */
  FleetRefused: 'FleetRefused',
  /** The workflow: the rollout was rolled back. */
  RolledBack: 'RolledBack',
  /** Backfills: a chunk's statement failed (not a lock or connection problem). */
  ChunkSqlError: 'ChunkSqlError',
  /** Backfills: a chunk's validate check failed. */
  ChunkValidationError: 'ChunkValidationError',
  /** Backfills: the spec does not fit the table (key type, missing table). */
  BackfillSetupError: 'BackfillSetupError',
  /** The backfill workflow failed. */
  BackfillFailed: 'BackfillFailed',
} as const;

export type FailureTypeName = (typeof FailureType)[keyof typeof FailureType];
