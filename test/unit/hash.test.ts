import crypto from 'node:crypto';
import { sha256Hex, hashTransform, stepBackfillName } from '../../core/common/hash';

const nodeSha = (s: string): string => crypto.createHash('sha256').update(s).digest('hex');

describe('plan/hash', () => {
  test.each([
    ['empty', ''],
    ['ascii', 'amount * 100'],
    ['55 bytes (padding fits one block)', 'x'.repeat(55)],
    ['56 bytes (padding needs a second block)', 'y'.repeat(56)],
    ['64 bytes', 'z'.repeat(64)],
    ['multi-block', 'CASE WHEN status = 1 THEN 2 ELSE 3 END'.repeat(40)],
    ['two-, three- and four-byte UTF-8', 'naïve € 日本 🚀'],
    ['a lone surrogate, as Buffer encodes it', 'a\ud800b'],
  ])('sha256Hex matches node:crypto: %s', (_name, text) => {
    expect(sha256Hex(text)).toBe(nodeSha(text));
  });

  test('hashTransform is the first 16 hex digits, as stored with generations', () => {
    expect(hashTransform('lower(email)')).toBe(nodeSha('lower(email)').slice(0, 16));
  });

  test('stepBackfillName keeps short names and cuts long ones to 100 characters with a hash', () => {
    expect(stepBackfillName('orders-v2', 'fill')).toBe('orders-v2.fill');
    const long = stepBackfillName('r'.repeat(96), 'step');
    expect(long).toHaveLength(100);
    expect(long).toBe(`${'r'.repeat(90)}.${nodeSha(`${'r'.repeat(96)}.step`).slice(0, 9)}`);
    expect(stepBackfillName('r'.repeat(96), 'other')).not.toBe(long);
  });
});
