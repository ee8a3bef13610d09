import type { Logger } from 'pino';
import pino from 'pino';

/**
 * pino JSON lines, pretty on a TTY. Anything that looks like a connection
 * string's password or a key is redacted before it is written.
 */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', name = 'stagefill'): Logger {
  const pretty = process.stdout.isTTY && !process.env.CI;
  return pino({
    name,
    level,
    redact: {
      paths: ['password', '*.password', 'databaseUrl', '*.databaseUrl', 'DATABASE_URL', '*.DATABASE_URL', 'tls.key', '*.key'],
      censor: '***',
    },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a: unknown) => (typeof a === 'string' ? redactSecrets(a) : a)) as Parameters<typeof method>);
      },
    },
    transport: pretty ? { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } : undefined,
  });
}

/** postgres://user:secret@host → postgres://user:***@host, wherever it appears in a string. */
export function redactSecrets(s: string): string {
  return s.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/\s@]*:)([^@\s]+)(@)/gi, '$1***$3');
}
