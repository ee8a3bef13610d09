/**
 * The client's errors, each with the exit code the CLI ends with:
 * 2 when the operator's input is wrong (fix the command), 1 when the run,
 * the connection or the state of things says no.
 */
export class ClientError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A flag or argument is wrong. */
export class UsageError extends ClientError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** A control that does not apply to this run (approve on a backfill, a throttle value out of range): the operator's input is wrong. */
export class NotApplicableError extends ClientError {
  constructor(message: string) {
    super(message, 2);
  }
}

export class NotFoundError extends ClientError {
  constructor(message: string) {
    super(message, 1);
  }
}

/** The run exists but has closed: a control can no longer reach it. */
export class RunClosedError extends ClientError {
  constructor(
    message: string,
    readonly status: string,
  ) {
    super(message, 1);
  }
}

export class AlreadyRunningError extends ClientError {
  constructor(
    message: string,
    readonly workflowId: string,
  ) {
    super(message, 1);
  }
}

export class ConnectionError extends ClientError {
  constructor(message: string) {
    super(message, 1);
  }
}

/** A rollout spec that parses but that the database says cannot run as written (a table that does not exist, a key changed without a column referencing it): `plan` and `start` exit 2. */
export class RolloutRefusedError extends ClientError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** A backfill spec that parses but that the database says cannot run as written (no such table or key column): `plan` and `start` exit 2. */
export class BackfillRefusedError extends ClientError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** A replay that cannot be: no such backfill, several, or not completed. */
export class ReplayError extends ClientError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** A run's query found no worker: its task queue sends the work to a deployment version no polling worker has. */
export class NoWorkerError extends ClientError {
  constructor(message: string) {
    super(message, 1);
  }
}

export class ScheduleExistsError extends ClientError {
  constructor(message: string) {
    super(message, 1);
  }
}

/** The exit code an error carries (client errors, the worker's ConfigError), if it carries one. */
export function exitCodeOf(err: unknown): number | undefined {
  const code = (err as { exitCode?: unknown } | null)?.exitCode;
  return typeof code === 'number' && Number.isInteger(code) ? code : undefined;
}
