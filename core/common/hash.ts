/**
 * SHA-256 in plain TypeScript (no node:crypto), so the names and hashes built
 * from it are pure rules the workflow, the activities and the CLI share:
 * a transform's hash (stored with each generation) and a rollout step's
 * backfill name. Matches node:crypto's sha256 over the UTF-8 bytes.
 */
import { itemAt } from './checked';

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
  0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
  0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
  0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
  0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
  0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** The UTF-8 bytes of a string (lone surrogates as U+FFFD, as Buffer.from does). */
function utf8(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) {
    let c = ch.codePointAt(0) as number;
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return out;
}

/** The eight working words of SHA-256 (its state between blocks, and a..h inside one). */
type Words8 = [number, number, number, number, number, number, number, number];

/** The hex SHA-256 of a string's UTF-8 bytes. */
export function sha256Hex(text: string): string {
  const bytes = utf8(text);
  const bitLength = bytes.length * 8;
  bytes.push(0x80);
  while (bytes.length % 64 !== 56) bytes.push(0);
  const high = Math.floor(bitLength / 0x100000000);
  for (const word of [high, bitLength >>> 0]) bytes.push((word >>> 24) & 255, (word >>> 16) & 255, (word >>> 8) & 255, word & 255);
  let h: Words8 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  const w = new Uint32Array(64);
  const wAt = (i: number): number => itemAt(w, i, 'schedule word');
  const byteAt = (i: number): number => itemAt(bytes, i, 'byte');
  const rotr = (x: number, n: number): number => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < bytes.length; off += 64) {
    for (let i = 0; i < 16; i++) {
      const at = off + 4 * i;
      w[i] = (byteAt(at) << 24) | (byteAt(at + 1) << 16) | (byteAt(at + 2) << 8) | byteAt(at + 3);
    }
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(wAt(i - 15), 7) ^ rotr(wAt(i - 15), 18) ^ (wAt(i - 15) >>> 3);
      const s1 = rotr(wAt(i - 2), 17) ^ rotr(wAt(i - 2), 19) ^ (wAt(i - 2) >>> 10);
      w[i] = wAt(i - 16) + s0 + wAt(i - 7) + s1;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + itemAt(K, i, 'round constant') + wAt(i)) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      [hh, g, f, e, d, c, b, a] = [g, f, e, (d + t1) >>> 0, c, b, a, (t1 + t2) >>> 0];
    }
    h = [
      (h[0] + a) >>> 0,
      (h[1] + b) >>> 0,
      (h[2] + c) >>> 0,
      (h[3] + d) >>> 0,
      (h[4] + e) >>> 0,
      (h[5] + f) >>> 0,
      (h[6] + g) >>> 0,
      (h[7] + hh) >>> 0,
    ];
  }
  return h.map((v) => v.toString(16).padStart(8, '0')).join('');
}

/** A transform's hash as stored with each generation (16 hex digits of its SHA-256). */
export function hashTransform(transform: string): string {
  return sha256Hex(transform).slice(0, 16);
}

/** The backfill a rollout's column step starts: `<rollout>.<step>`, a long one cut to 100 characters and hashed. */
export function stepBackfillName(rolloutName: string, stepId: string): string {
  const name = `${rolloutName}.${stepId}`;
  return name.length <= 100 ? name : `${name.slice(0, 90)}.${hashTransform(name).slice(0, 9)}`;
}
