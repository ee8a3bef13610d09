import { isStepKind, roleOf } from '.';
import { itemAt, present } from '../core/common/checked';

/**
 * The step graph of a rollout. Steps without `dependsOn` depend on the step
 * written before them, so a linear spec needs no ids at all.
 */
export interface GraphStep {
  id: string;
  kind: string;
  table: string;
  dependsOn: string[];
}

export interface GraphProblem {
  /** Index of the step the problem is reported on (for the error path). */
  index: number;
  field: 'id' | 'dependsOn' | 'kind';
  message: string;
}

/** Ids for steps that have none: `<n>-<kind>`, 1-based, stable for a given spec. */
export function defaultStepId(index: number, kind: string): string {
  return `${index + 1}-${kind}`;
}

export interface RawStep {
  id?: string;
  kind: string;
  table?: string;
  dependsOn?: string[];
}

/** Fills in ids, tables and implicit dependencies. */
export function normalizeGraph(steps: RawStep[], defaultTable: string): GraphStep[] {
  const ids = steps.map((s, i) => s.id ?? defaultStepId(i, s.kind));
  return steps.map((s, i) => ({
    id: itemAt(ids, i, 'step id'),
    kind: s.kind,
    table: s.table ?? defaultTable,
    dependsOn: s.dependsOn ?? (i === 0 ? [] : [itemAt(ids, i - 1, 'step id')]),
  }));
}

export function graphProblems(steps: GraphStep[]): GraphProblem[] {
  const problems: GraphProblem[] = [];
  const index = new Map<string, number>();
  steps.forEach((s, i) => {
    if (index.has(s.id))
      problems.push({
        index: i,
        field: 'id',
        message: `duplicate step id "${s.id}" (also step ${index.get(s.id)! + 1}); give each step its own id`,
      });
    else index.set(s.id, i);
  });
  steps.forEach((s, i) => {
    for (const d of s.dependsOn) {
      if (!index.has(d))
        problems.push({
          index: i,
          field: 'dependsOn',
          message: `step "${s.id}" depends on unknown step "${d}"; known ids: ${[...index.keys()].join(', ')}`,
        });
      if (d === s.id) problems.push({ index: i, field: 'dependsOn', message: `step "${s.id}" depends on itself` });
    }
  });
  if (problems.length) return problems;

  const cycle = findCycle(steps);
  if (cycle) {
    problems.push({
      index: index.get(itemAt(cycle, 0, 'step of the cycle'))!,
      field: 'dependsOn',
      message: `dependency cycle: ${cycle.join(' -> ')}; remove one of these dependsOn entries`,
    });
    return problems;
  }

  // contract: nothing but another contract may depend on it (contracts run after every other step; one may
  // wait for another, e.g. a parent table's after its children's, whose foreign keys must move first),
  // and it must come after every other step on its table.
  const reach = ancestors(steps);
  const isContract = (s: GraphStep) => isStepKind(s.kind) && roleOf(s.kind) === 'contract';
  steps.forEach((s, i) => {
    if (!isContract(s)) return;
    const dependents = steps.filter((o) => o.dependsOn.includes(s.id) && !isContract(o)).map((o) => o.id);
    if (dependents.length)
      problems.push({
        index: i,
        field: 'dependsOn',
        message: `contract step "${s.id}" is irreversible, so nothing but another contract step may depend on it; ${dependents.join(', ')} do`,
      });
    const notBefore = steps.filter((o) => o.id !== s.id && o.table === s.table && !reach.get(s.id)!.has(o.id)).map((o) => o.id);
    if (notBefore.length) {
      problems.push({
        index: i,
        field: 'kind',
        message: `contract step "${s.id}" must be the last step on ${s.table}, after ${notBefore.join(', ')}; move it to the end (or make it depend on them)`,
      });
    }
  });
  return problems;
}

function findCycle(steps: GraphStep[]): string[] | undefined {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const color = new Map<string, 0 | 1 | 2>();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    color.set(id, 1);
    stack.push(id);
    for (const d of byId.get(id)!.dependsOn) {
      if (color.get(d) === 1) return [...stack.slice(stack.indexOf(d)), d];
      if (!color.get(d)) {
        const c = visit(d);
        if (c) return c;
      }
    }
    stack.pop();
    color.set(id, 2);
    return undefined;
  };
  for (const s of steps) {
    if (!color.get(s.id)) {
      const c = visit(s.id);
      if (c) return c;
    }
  }
  return undefined;
}

/** For each step, every step it transitively depends on. */
export function ancestors(steps: GraphStep[]): Map<string, Set<string>> {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const memo = new Map<string, Set<string>>();
  const get = (id: string): Set<string> => {
    const known = memo.get(id);
    if (known) return known;
    const out = new Set<string>();
    memo.set(id, out);
    for (const d of byId.get(id)!.dependsOn) {
      out.add(d);
      for (const a of get(d)) out.add(a);
    }
    return out;
  };
  for (const s of steps) get(s.id);
  return memo;
}

/** Layers of steps that can run together (Kahn's algorithm); assumes an acyclic graph. */
export function layers(steps: GraphStep[]): GraphStep[][] {
  const done = new Set<string>();
  const out: GraphStep[][] = [];
  let left = [...steps];
  while (left.length) {
    const ready = left.filter((s) => s.dependsOn.every((d) => done.has(d)));
    if (!ready.length) throw new Error('the step graph has a cycle');
    out.push(ready);
    for (const s of ready) done.add(s.id);
    left = left.filter((s) => !done.has(s.id));
  }
  return out;
}

/** Steps whose dependencies are all in `done` and that are neither done nor started. */
export function readySteps(steps: GraphStep[], done: ReadonlySet<string>, started: ReadonlySet<string>): GraphStep[] {
  return steps.filter((s) => !done.has(s.id) && !started.has(s.id) && s.dependsOn.every((d) => done.has(d)));
}

/**
 * The order to revert completed steps in: a step is reverted only after every
 * completed step that depends on it, and, among those free to go, the one
 * that finished last goes first. Deterministic for a given history.
 */
export function rollbackOrder(steps: GraphStep[], completedInOrder: string[]): string[] {
  const completed = new Set(completedInOrder);
  const finishedAt = new Map(completedInOrder.map((id, i) => [id, i]));
  const dependents = new Map<string, string[]>();
  for (const s of steps) for (const d of s.dependsOn) dependents.set(d, [...(dependents.get(d) ?? []), s.id]);
  const reverted = new Set<string>();
  const order: string[] = [];
  while (order.length < completed.size) {
    const free = [...completed].filter(
      (id) => !reverted.has(id) && (dependents.get(id) ?? []).every((dep) => !completed.has(dep) || reverted.has(dep)),
    );
    free.sort((a, b) => finishedAt.get(b)! - finishedAt.get(a)!);
    const next = present(
      free[0] ?? [...completed].filter((id) => !reverted.has(id)).sort((a, b) => finishedAt.get(b)! - finishedAt.get(a)!)[0],
      'a completed step not yet reverted',
    );
    reverted.add(next);
    order.push(next);
  }
  return order;
}
