import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures as Standard Webhooks (standardwebhooks.com, the scheme
 * Svix and others send) define them, so a receiver verifies stagefill's POSTs
 * with a library it may already use: HMAC-SHA256 over
 * `<webhook-id>.<webhook-timestamp>.<raw body>`, keyed with the secret's
 * base64-decoded bytes (`whsec_<base64>`), sent base64 as `v1,<signature>` in
 * `webhook-signature`. The timestamp (Unix seconds, each attempt's own) is in
 * the signed content, so a receiver refuses an old body sent again.
 */

export const SECRET_PREFIX = 'whsec_';

/** The HMAC key of one `whsec_<base64>` secret; undefined when it is not one of at least 24 bytes. */
export function secretKey(secret: string): Buffer | undefined {
  const b64 = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : undefined;
  if (!b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  const key = Buffer.from(b64, 'base64');
  return key.length >= 24 ? key : undefined;
}

/** The secrets of STAGEFILL_WEBHOOK_SECRET: one, or several separated by spaces while a receiver moves to a new one. */
export function parseSecrets(value: string): string[] {
  return value.split(/\s+/).filter(Boolean);
}

export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/** The base64 HMAC-SHA256 of `id.timestamp.body` under one secret. */
function sign(key: Buffer, id: string, timestamp: number, body: string): string {
  return createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
}

/** The headers that sign `body` (the exact bytes sent) at `timestamp` (Unix seconds), one `v1,` signature per secret. */
export function signatureHeaders(secrets: string[], id: string, timestamp: number, body: string): SignatureHeaders {
  const signatures = secrets.map((s) => {
    const key = secretKey(s);
    if (!key) throw new Error(`not a webhook secret (expected ${SECRET_PREFIX} followed by base64 of at least 24 bytes)`);
    return `v1,${sign(key, id, timestamp, body)}`;
  });
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signatures.join(' ') };
}

/**
 * What a receiver does (docs/operations.md shows the same in a few lines):
 * true when one of the `v1,` signatures matches under `secret` and the
 * timestamp is within `toleranceSeconds` of `now`.
 */
export function verifySignature(
  secret: string,
  headers: Partial<Record<keyof SignatureHeaders, string>>,
  body: string,
  opts: { now?: number; toleranceSeconds?: number } = {},
): boolean {
  const key = secretKey(secret);
  const id = headers['webhook-id'];
  const timestamp = Number(headers['webhook-timestamp']);
  if (!key || !id || !Number.isInteger(timestamp)) return false;
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - timestamp) > (opts.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(sign(key, id, timestamp, body));
  return (headers['webhook-signature'] ?? '')
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .some((s) => {
      const got = Buffer.from(s.slice(3));
      return got.length === expected.length && timingSafeEqual(got, expected);
    });
}
