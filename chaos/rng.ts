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

/**
 * A seed of its own for each concern and index (the fault schedule, the n-th rollout...), mixed from `seed` and
 * `parts`, so a draw added to one concern does not shift another's, and the n-th run's choices do not depend on how
 * many runs of other kinds started before it.
 */
export function derive(seed: number, ...parts: number[]): number {
  let h = (seed ^ 0x5f3759df) >>> 0;
  for (const p of [...parts, parts.length]) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

/** The items in a seeded order (Fisher-Yates: the draws do not depend on how a sort compares). */
export function shuffle<T>(xs: T[], rng: Rng): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [xs[i], xs[j]] = [itemAt(xs, j), itemAt(xs, i)];
  }
  return xs;
}
