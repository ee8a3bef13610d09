import { itemAt } from '../core/common/checked';

/**
 * A seeded generator (mulberry32): the same seed gives the same fault schedule and the same workload
 * choices, so a campaign that found a violation can be run again with `--seed`.
 */
export interface Rng {
  /** In [0, 1). */
  next(): number;
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(xs: readonly T[]): T;
  /** One of the keys, each as likely as its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K;
}

export function seeded(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng: Rng = {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    pick: (xs) => {
      if (xs.length === 0) throw new Error('pick from an empty list');
      return itemAt(xs, Math.floor(next() * xs.length), 'picked item');
    },
    weighted: (weights) => {
      const entries = Object.entries(weights) as [keyof typeof weights, number][];
      const total = entries.reduce((s, [, w]) => s + w, 0);
      let r = next() * total;
      for (const [k, w] of entries) {
        r -= w;
        if (r < 0) return k;
      }
      return itemAt(entries, entries.length - 1, 'weighted entry')[0];
    },
  };
  return rng;
}

/** A stream of its own for each concern, so adding a draw to one does not shift the other's schedule. */
export function streams(seed: number): { faults: Rng; workload: Rng } {
  return { faults: seeded(seed ^ 0x5f3759df), workload: seeded(seed) };
}
