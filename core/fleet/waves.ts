/**
 * Which targets each wave of a fleet takes, and when a wave halts. Pure: the
 * CLI's `plan` and the fleet workflow call the same functions, so the waves a
 * plan prints are the waves a run takes.
 */
import type { GateCheck } from '../common/fields';

export interface FleetTarget {
  name: string;
  tags: Record<string, string>;
}

/** How a wave picks its targets, from those no earlier wave took. */
export type WaveSelector = { names: string[] } | { tags: Record<string, string> } | { share: number | 'rest' };

export interface WaveRule {
  name: string;
  select: WaveSelector;
  parallelism: number;
  onFailure: 'halt' | 'continue';
  /** With `continue`: failures the wave tolerates, a count or a share (`{ percent: 10 }`); undefined: any number. */
  maxFailures?: number | { percent: number };
  /** Wait for `approve` after this wave completes, before the next begins. */
  approval: boolean;
  /** After the wave's targets completed: `checks` on each of them every `everyMs` for `durationMs`; a breach fails that target. */
  soak?: WaveSoak;
}

export interface WaveSoak {
  durationMs: number;
  everyMs: number;
  checks: GateCheck[];
}

export interface PlannedWave {
  name: string;
  targets: string[];
}

export class WavePlanError extends Error {}

/** Every wave's targets, in order; a target is in at most one wave (the first that takes it). Names are taken as given; tags and shares in name order. */
export function planWaves(targets: FleetTarget[], waves: WaveRule[]): { waves: PlannedWave[]; unassigned: string[] } {
  const byName = new Map(targets.map((t) => [t.name, t]));
  const remaining = [...targets].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const taken = new Set<string>();
  const planned: PlannedWave[] = [];
  for (const w of waves) {
    const left = remaining.filter((t) => !taken.has(t.name));
    let picked: string[];
    const sel = w.select;
    if ('names' in sel) {
      for (const n of sel.names) {
        if (!byName.has(n))
          throw new WavePlanError(`wave "${w.name}": no target named "${n}" is served (\`stagefill targets\` lists them)`);
        if (taken.has(n)) throw new WavePlanError(`wave "${w.name}": target "${n}" is already in an earlier wave`);
      }
      picked = [...sel.names];
    } else if ('tags' in sel) {
      picked = left.filter((t) => Object.entries(sel.tags).every(([k, v]) => t.tags[k] === v)).map((t) => t.name);
    } else if (sel.share === 'rest') {
      picked = left.map((t) => t.name);
    } else {
      // a share of what is left, at least one while any is left
      const n = left.length ? Math.max(1, Math.ceil((left.length * sel.share) / 100)) : 0;
      picked = left.slice(0, n).map((t) => t.name);
    }
    for (const n of picked) taken.add(n);
    planned.push({ name: w.name, targets: picked });
  }
  return { waves: planned, unassigned: remaining.filter((t) => !taken.has(t.name)).map((t) => t.name) };
}

/**
 * How many failed targets a wave of `size` tolerates before it halts. A share
 * is of the wave's targets, rounded down so the failed share never exceeds
 * it, but at least one when the share is above 0 and the wave has a target:
 * `continue` with "10%" on a wave of 5 tolerates 1 (rounded down it would be
 * 0, a halt at the first failure, which is not what `continue` asked for).
 * 10% of 25 tolerates 2, of 89 tolerates 8. `atLeastOne: false` is the rule
 * of fleets started before it (plain rounding down), for their replay.
 */
export function allowedFailures(
  rule: Pick<WaveRule, 'onFailure' | 'maxFailures'>,
  size: number,
  opts: { atLeastOne?: boolean } = {},
): number {
  if (rule.onFailure === 'halt') return 0;
  if (rule.maxFailures === undefined) return Number.POSITIVE_INFINITY;
  if (typeof rule.maxFailures === 'number') return rule.maxFailures;
  const n = Math.floor((size * rule.maxFailures.percent) / 100);
  return (opts.atLeastOne ?? true) && rule.maxFailures.percent > 0 && size > 0 ? Math.max(1, n) : n;
}

/** "10%" -> 10, "rest" -> 'rest'; undefined for anything else. */
export function parseShare(v: string): number | 'rest' | undefined {
  if (v === 'rest') return 'rest';
  const m = /^(\d+(?:\.\d+)?)%$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n > 0 && n <= 100 ? n : undefined;
}
