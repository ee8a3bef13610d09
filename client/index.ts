/**
 * stagefill as a library: what the CLI does, as typed functions, for a
 * platform team's scripts. `package.json` "main" points here.
 *
 *   import { connect, parseSpec, startRun, watchRun } from 'stagefill';
 */
export { connect } from './connection';
export type { ConnectOptions, StagefillConnection } from './connection';

export * from './runs';
export {
  startBackfill,
  getProgress,
  describeRun,
  sendControl,
  cancelRun,
  setThrottle,
  waitForRun,
  listRuns,
  defaultActor,
  specSummary,
} from './operations';
export type { StartBackfillOptions, ControlVerb, ListFilter, RunSummary } from './operations';
export {
  RunClosedError,
  ClientError,
  UsageError,
  RolloutRefusedError,
  BackfillRefusedError,
  ConnectionError,
  AlreadyRunningError,
  NotFoundError,
  NotApplicableError,
  ScheduleExistsError,
  ReplayError,
  exitCodeOf,
} from './errors';
export { startWorkflow } from './start';
export type { StartWorkflowOptions, StartedRun } from './start';
export { backfillSummary, rolloutSummary } from '../steps/summary';

export { watchRun, formatStatus, formatProgressLine, formatEta } from './watch';
export { readHistory, formatHistory, backfillOfWorkflowId } from './history';
export type { RunHistory, AuditEvent } from './history';
export {
  createSchedule,
  describeSchedule,
  listSchedules,
  pauseSchedule,
  unpauseSchedule,
  deleteSchedule,
  defaultScheduleId,
  scheduledWorkflowIdPrefix,
} from './schedules';
export type { CreateScheduleOptions, ScheduleInfo } from './schedules';
export { printPlan, planWithRefusal } from './plan-output';
export { refusalBeforeStart } from './contract-plan';
export { backfillRefusalBeforeStart } from './plan-output';

export { parseSpec, parseBackfillSpec, parseRolloutSpec, SpecError } from '../steps/spec';
export type { Spec, BackfillSpecInput, RolloutSpec, RolloutSpecInput, RolloutStep } from '../steps/spec';
export type { BackfillSpec, GateCheck } from '../core/common/fields';
export type { StepKind } from '../steps';
export { loadSpecFile, formatSpecError } from './spec-load';
export { backfillWorkflowId, rolloutWorkflowId } from '../core/common/ids';
export type { BackfillProgress, BackfillState, ActorPayload } from '../workflows/definitions';
export type { ThrottleChange, ThrottleSettings } from '../core/backfill/throttle';
export type { BackfillResult } from '../workflows/backfill/workflow';
