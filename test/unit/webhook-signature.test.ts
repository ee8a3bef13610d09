import { createHmac } from 'node:crypto';
import { signatureHeaders, verifySignature, secretKey, parseSecrets } from '../../activities/webhook-signature';
import { loadWorkerConfig, ConfigError } from '../../worker/config';

// the test vector of the Standard Webhooks specification (github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md)
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

describe('webhook signatures (Standard Webhooks)', () => {
  test("the specification's test vector: the same signature a Standard Webhooks library expects", () => {
    expect(signatureHeaders([VECTOR.secret], VECTOR.id, VECTOR.timestamp, VECTOR.body)).toEqual({
      'webhook-id': VECTOR.id,
      'webhook-timestamp': String(VECTOR.timestamp),
      'webhook-signature': VECTOR.signature,
    });
  });

  test('HMAC-SHA256 over id.timestamp.body, keyed with the decoded secret, as a receiver computes it by hand', () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    const body = JSON.stringify({ id: 'x/1', event: 'finished' });
    const h = signatureHeaders([secret], 'x%2F1', 1_800_000_000, body);
    const expected = createHmac('sha256', Buffer.alloc(32, 7)).update(`x%2F1.1800000000.${body}`).digest('base64');
    expect(h['webhook-signature']).toBe(`v1,${expected}`);
  });

  test('verification: the right secret and a fresh timestamp pass; a changed body, another secret, an old timestamp do not', () => {
    const secret = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
    const other = `whsec_${Buffer.alloc(32, 2).toString('base64')}`;
    const now = 1_800_000_000;
    const body = '{"event":"finished"}';
    const h = signatureHeaders([secret], 'id-1', now, body);
    expect(verifySignature(secret, h, body, { now })).toBe(true);
    expect(verifySignature(secret, h, body.replace('finished', 'failed'), { now })).toBe(false);
    expect(verifySignature(other, h, body, { now })).toBe(false);
    // the timestamp is signed: a replay ten minutes later is refused, and moving the header breaks the signature
    expect(verifySignature(secret, h, body, { now: now + 600 })).toBe(false);
    expect(verifySignature(secret, { ...h, 'webhook-timestamp': String(now + 600) }, body, { now: now + 600 })).toBe(false);
  });

  test('rotation: one v1 signature per secret, either verifies', () => {
    const a = `whsec_${Buffer.alloc(24, 3).toString('base64')}`;
    const b = `whsec_${Buffer.alloc(24, 4).toString('base64')}`;
    const h = signatureHeaders(parseSecrets(`${a}  ${b}`), 'id', 100, 'body');
    expect(h['webhook-signature'].split(' ')).toHaveLength(2);
    expect(verifySignature(a, h, 'body', { now: 100 })).toBe(true);
    expect(verifySignature(b, h, 'body', { now: 100 })).toBe(true);
  });

  test('secrets: whsec_ and base64 of at least 24 bytes; the worker refuses anything else at start, naming the variable and the fix', () => {
    expect(secretKey(VECTOR.secret)).toHaveLength(24);
    expect(secretKey('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toBeUndefined();
    expect(secretKey(`whsec_${Buffer.alloc(16).toString('base64')}`)).toBeUndefined();
    const base = { DATABASE_URL: 'postgres://u@localhost:5432/db' };
    expect(loadWorkerConfig({ ...base, STAGEFILL_WEBHOOK_SECRET: VECTOR.secret }).STAGEFILL_WEBHOOK_SECRET).toBe(VECTOR.secret);
    expect(() => loadWorkerConfig({ ...base, STAGEFILL_WEBHOOK_SECRET: 'hunter2' })).toThrow(ConfigError);
    expect(() => loadWorkerConfig({ ...base, STAGEFILL_WEBHOOK_SECRET: 'hunter2' })).toThrow(
      /^STAGEFILL_WEBHOOK_SECRET: expected whsec_ followed by base64 of at least 24 random bytes, e\.g\. whsec_\$\(openssl rand -base64 32\)/,
    );
  });
});
