/**
 * Which targets the fleet's worker processes serve, gathered from each of
 * them: every process answers for the targets of its own targets file, and
 * the union is the fleet's (a target served by several processes once, with
 * every process that serves it). Pure: the fleet workflow and `stagefill
 * targets` merge the same way.
 */
import type { FleetTarget } from './waves';

/** A target as the process serving it reports it; `answers`/`error` only when asked to probe its database. */
export interface ServedTarget extends FleetTarget {
  answers?: boolean;
  /** Why its database does not answer (from the worker process, with its connection). */
  error?: string;
}

/** One worker process's answer: its targets, or why it did not answer. */
export type ProcessAnswer = { process: string; targets: ServedTarget[] } | { process: string; error: string };

export interface GatheredTarget extends ServedTarget {
  /** The worker processes serving it (their keys), sorted. */
  workers: string[];
}

export interface GatheredTargets {
  /** Every target some process serves, by name. */
  targets: GatheredTarget[];
  /** Every process asked: how many targets it serves, or why it did not answer. */
  processes: ({ process: string; targets: number } | { process: string; error: string })[];
}

const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * The union of the processes' answers. A target several processes serve is
 * listed once, with the tags of the first process (by key) and `answers`
 * true if any of them reaches its database.
 */
export function mergeServed(answers: ProcessAnswer[]): GatheredTargets {
  const sorted = [...answers].sort((a, b) => (a.process < b.process ? -1 : a.process > b.process ? 1 : 0));
  const targets = new Map<string, GatheredTarget>();
  const processes: GatheredTargets['processes'] = [];
  for (const a of sorted) {
    if ('error' in a) {
      processes.push({ process: a.process, error: a.error });
      continue;
    }
    processes.push({ process: a.process, targets: a.targets.length });
    for (const t of a.targets) {
      const seen = targets.get(t.name);
      if (!seen) {
        targets.set(t.name, { ...t, workers: [a.process] });
        continue;
      }
      seen.workers.push(a.process);
      if (t.answers && !seen.answers) {
        seen.answers = true;
        delete seen.error;
      }
    }
  }
  return { targets: [...targets.values()].sort(byName), processes };
}

/**
 * Which process reads which of `names` (the first that serves it and is not in `exclude`, the processes that did
 * not answer); names no such process serves are left out.
 */
export function assignToProcesses(
  gathered: GatheredTargets,
  names: string[],
  exclude: ReadonlySet<string> = new Set(),
): Map<string, string[]> {
  const workerOf = new Map(gathered.targets.map((t) => [t.name, t.workers.find((w) => !exclude.has(w))]));
  const out = new Map<string, string[]>();
  for (const n of names) {
    const w = workerOf.get(n);
    if (w === undefined) continue;
    const list = out.get(w);
    if (list) list.push(n);
    else out.set(w, [n]);
  }
  return out;
}
