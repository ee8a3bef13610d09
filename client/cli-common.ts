import type { Command } from 'commander';
import { Option } from 'commander';
import { parseDuration } from '../core/common/duration';
import type { ConnectOptions, StagefillConnection } from './connection';
import { connect } from './connection';
import { UsageError } from './errors';

/** The worker's variables, each overridable by its flag (flags win). */
export function connectionOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--address <host:port>', 'Temporal frontend').env('TEMPORAL_ADDRESS'))
    .addOption(new Option('--namespace <ns>', 'Temporal namespace').env('TEMPORAL_NAMESPACE'))
    .addOption(new Option('--task-queue <name>', 'task queue the workers poll').env('STAGEFILL_TASK_QUEUE'))
    .addOption(new Option('--tls-cert <file>', 'mTLS client certificate (with --tls-key)').env('TEMPORAL_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'mTLS client key (with --tls-cert)').env('TEMPORAL_TLS_KEY'))
    .addOption(new Option('--tls-ca <file>', "CA certificate of the server, when it is not in the system's store").env('TEMPORAL_TLS_CA'));
}

export async function withConnection<T>(opts: ConnectOptions, fn: (conn: StagefillConnection) => Promise<T>): Promise<T> {
  const conn = await connect(opts);
  try {
    return await fn(conn);
  } finally {
    await conn.close();
  }
}

export const print = (s: string) => process.stdout.write(s + '\n');
/** One JSON document on stdout: the shape each verb documents in docs/operations.md. */
export const printJson = (v: unknown) => print(JSON.stringify(v, null, 2));
export const examples = (...lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
export const JSON_HELP = 'machine-readable output (one JSON document; shapes in docs/operations.md)';

export function toInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`expected a whole number, got "${v}"`);
  return n;
}

export function durationOption(flag: string, v: string): number {
  const ms = parseDuration(v);
  if (!ms) throw new UsageError(`${flag}: "${v}" is not a duration; write e.g. 30s, 15m, 4h or 1h30m`);
  return ms;
}

export const formatMs = (ms: number) =>
  ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`;
