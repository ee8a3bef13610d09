import {
  UsageError,
  NotApplicableError,
  NotFoundError,
  RunClosedError,
  AlreadyRunningError,
  ConnectionError,
  ReplayError,
  ScheduleExistsError,
} from '../../client/errors';
import { ConfigError } from '../../worker/config';

/** Every client error and the exit code the CLI ends with: 2 for wrong input, 1 for the state of things. */
export const errorExit: [string, number, () => { exitCode: number }][] = [
  ['UsageError', 2, () => new UsageError('x')],
  ['NotApplicableError', 2, () => new NotApplicableError('x')],
  ['ReplayError', 2, () => new ReplayError('x')],
  ['ConfigError', 2, () => new ConfigError('x')],
  ['NotFoundError', 1, () => new NotFoundError('x')],
  ['RunClosedError', 1, () => new RunClosedError('x', 'COMPLETED')],
  ['AlreadyRunningError', 1, () => new AlreadyRunningError('x', 'id')],
  ['ConnectionError', 1, () => new ConnectionError('x')],
  ['ScheduleExistsError', 1, () => new ScheduleExistsError('x')],
];
