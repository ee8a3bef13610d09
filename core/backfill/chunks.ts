/**
 * How a lane cuts its next chunk. Every cut is correct (a chunk is whatever
 * [lo, hi) it names, recorded with its checkpoint); the choice is about cost.
 *
 * The general cut asks the key's index for the key `size` rows on, which walks
 * `size` index entries per chunk. On a unique integer key a range [lo, lo + n)
 * holds at most n rows, so when a partition is dense (about one row per key
 * value) `lo + size` is as good a cut and costs nothing.
 */
import { itemAt } from '../common/checked';

const INTEGER_KEY_TYPES = new Set(['smallint', 'integer', 'bigint']);

/**
 * Rows per key value above which a partition is cut by arithmetic. Below it
 * arithmetic chunks hold fewer rows than `size` on average, and the extra
 * chunks cost more than the index walks they save.
 */
export const DENSE_ENOUGH = 0.9;

export interface PartitionShape {
  keyType: string;
  isKeyUnique: boolean;
  lo: string;
  hi: string;
  /** Rows in [lo, hi): counted, or estimated from a sample. */
  rowsPlanned: number;
}

export function isCutByArithmetic(p: PartitionShape): boolean {
  if (!p.isKeyUnique || !INTEGER_KEY_TYPES.has(p.keyType)) return false;
  const span = Number(BigInt(p.hi) - BigInt(p.lo));
  return span > 0 && p.rowsPlanned / span >= DENSE_ENOUGH;
}

/** `lo + size`, or the partition's end if that comes first. Key values are decimal text. */
export function arithmeticChunkEnd(lo: string, partitionHi: string, size: number): string {
  const end = BigInt(lo) + BigInt(size);
  return end < BigInt(partitionHi) ? end.toString() : partitionHi;
}

/**
 * Partitions of equal key span: on a dense unique integer key they hold
 * about equal rows, and cutting them needs no look at the data (a sample of a
 * 5M-row table took a tenth of a second, before any chunk could start).
 * `rowsPerKey` spreads the table's row estimate over the spans.
 */
export function evenKeyPartitions(from: string, to: string, parts: number, rowsPerKey: number): { lo: string; hi: string; rows: number }[] {
  const lo = BigInt(from);
  const span = BigInt(to) - lo;
  if (span <= 0n) return [{ lo: from, hi: to, rows: 0 }];
  const n = BigInt(Math.max(1, Math.min(parts, Number(span))));
  const out: { lo: string; hi: string; rows: number }[] = [];
  for (let i = 0n; i < n; i++) {
    const a = lo + (span * i) / n;
    const b = lo + (span * (i + 1n)) / n;
    out.push({ lo: a.toString(), hi: b.toString(), rows: Math.round(Number(b - a) * Math.min(1, rowsPerKey)) });
  }
  return out;
}

export interface RecordedChunk {
  lo: string;
  hi: string;
  partition_no: number;
  rows: string | number;
}

/**
 * A replay's partitions: the recorded chunks that cover the range, grouped
 * by the partition that ran them (in key order, as given), each re-run as
 * exactly the ranges recorded.
 */
export function replayPartitions(
  chunks: readonly RecordedChunk[],
): { lo: string; hi: string; rows: number; fixedChunks: [string, string][]; leaf?: string | null }[] {
  const byPartition = new Map<number, RecordedChunk[]>();
  for (const c of chunks) byPartition.set(c.partition_no, [...(byPartition.get(c.partition_no) ?? []), c]);
  return [...byPartition.values()].map((cs) => ({
    lo: itemAt(cs, 0, 'recorded chunk').lo,
    hi: itemAt(cs, cs.length - 1, 'recorded chunk').hi,
    rows: cs.reduce((s, c) => s + Number(c.rows), 0),
    fixedChunks: cs.map((c) => [c.lo, c.hi] as [string, string]),
  }));
}

/**
 * How many key partitions each leaf of a partitioned table gets: about
 * `parts` in all, shared by the leaves' row estimates, at least one each
 * (a leaf never shares a partition with another, so a chunk never spans two).
 */
export function partsPerLeaf(parts: number, estimates: readonly number[]): number[] {
  const known = estimates.map((e) => Math.max(0, e));
  const total = known.reduce((a, b) => a + b, 0);
  if (total <= 0) return estimates.map(() => Math.max(1, Math.round(parts / Math.max(1, estimates.length))));
  return known.map((e) => Math.max(1, Math.round((parts * e) / total)));
}

/**
 * Leaf spans in key order without comparing keys here: the spans lie end to
 * end (each one's hi is the next one's lo), so the first is the one whose lo
 * is nobody's hi.
 */
export function inKeyOrder<T extends { lo: string; hi: string }>(spans: readonly T[]): T[] {
  const byLo = new Map(spans.map((s) => [s.lo, s]));
  const his = new Set(spans.map((s) => s.hi));
  const out: T[] = [];
  let s = spans.find((x) => !his.has(x.lo));
  while (s && !out.includes(s)) {
    out.push(s);
    s = byLo.get(s.hi);
  }
  for (const x of spans) if (!out.includes(x)) out.push(x);
  return out;
}

/** What an attach or detach changed in a partitioned table's leaves since planning, or undefined. */
export function leavesChanged(planned: readonly string[] | null, now: readonly string[] | null): string | undefined {
  if (!planned) return undefined;
  const current = now ?? [];
  const attached = current.filter((l) => !planned.includes(l));
  const detached = planned.filter((l) => !current.includes(l));
  if (!attached.length && !detached.length) return undefined;
  return [attached.length ? `attached: ${attached.join(', ')}` : '', detached.length ? `detached: ${detached.join(', ')}` : '']
    .filter(Boolean)
    .join('; ');
}
