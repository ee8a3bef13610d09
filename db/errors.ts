import { ApplicationFailure } from '@temporalio/activity';
import { FailureType } from '../core/common/failures';

/**
 * What a failed statement means for a chunk. SQLSTATE classes:
 * https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
export type ErrorClass = 'lock' | 'transient' | 'fatal';

const TRANSIENT_CODES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '57P01', // admin_shutdown (server restart, pg_terminate_backend)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up)
  '53300', // too_many_connections
  '53400', // configuration_limit_exceeded
  '58000', // system_error
  '57014', // query_canceled: statement_timeout on a busy table; retried with backoff
]);

const NETWORK_ERRNOS = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

export function classifyPgError(err: unknown): ErrorClass {
  const e = err as { code?: string; message?: string };
  const code = e?.code;
  if (code === '55P03') return 'lock'; // lock_not_available: lock_timeout fired
  if (code && TRANSIENT_CODES.has(code)) return 'transient';
  if (code && code.startsWith('08')) return 'transient'; // connection_exception
  if (code && NETWORK_ERRNOS.has(code)) return 'transient';
  // DDL changed what a prepared chunk statement returns; the lease's retry prepares it again on a new connection
  if (code === '0A000' && /cached plan must not change result type/.test(e?.message ?? '')) return 'transient';
  const msg = e?.message ?? '';
  if (
    /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect|server closed the connection/i.test(
      msg,
    )
  ) {
    return 'transient';
  }
  // Anything with a SQLSTATE left (syntax, undefined column, constraint, data) will fail the same way again.
  if (code && /^[0-9A-Z]{5}$/.test(code)) return 'fatal';
  return 'transient';
}

export const CHUNK_SQL_ERROR = FailureType.ChunkSqlError;
export const CHUNK_VALIDATION_ERROR = FailureType.ChunkValidationError;
export const SETUP_ERROR = FailureType.BackfillSetupError;

/** Non-retryable failure naming the chunk and carrying the database's own message. */
export function chunkFailure(err: unknown, lo: string, hi: string, stage: string): ApplicationFailure {
  const e = err as { code?: string; message?: string; detail?: string };
  const message = `chunk [${lo}, ${hi}) ${stage} failed: ${e?.message ?? String(err)}${e?.detail ? ` (${e.detail})` : ''}`;
  return ApplicationFailure.create({
    message,
    type: CHUNK_SQL_ERROR,
    nonRetryable: true,
    details: [{ lo, hi, code: e?.code ?? null, stage }],
  });
}

/** A non-retryable failure of one of the types in core/common/failures.ts. */
export function failure(type: string, message: string, details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true, details: details === undefined ? undefined : [details] });
}

/** Postgres's message with its detail and hint, for failures operators read. */
export function pgMessage(err: unknown): string {
  const e = err as { message?: string; detail?: string; hint?: string };
  return `${e?.message ?? String(err)}${e?.detail ? ` (${e.detail})` : ''}${e?.hint ? ` hint: ${e.hint}` : ''}`;
}
