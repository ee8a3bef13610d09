import type { RolloutSpec, RolloutStep } from './spec';
import type { GraphStep } from './graph';
import { normalizeGraph, layers } from './graph';
import { qualifiedName } from '../core/common/table-name';
import { stepModule } from '.';
import { itemAt } from '../core/common/checked';

/** What a step does to the schema going forward, and what its rollback does. Pure: for `plan` and the audit. */
export interface StepDescription {
  id: string;
  kind: string;
  table: string;
  dependsOn: string[];
  forward: string;
  rollback: string;
  isReversible: boolean;
  /** The strongest table lock the step takes and for how long. */
  lock: string;
  /** Reads and writes carry on while it runs. */
  isOnline: boolean;
}

/** The step's own module describes it (steps/<kind>/plan.ts). */
export function describeStep(step: RolloutStep, g: GraphStep, rollbackWindowMs: number): StepDescription {
  const p = stepModule(step.kind).describe(step, { id: g.id, table: g.table, rollbackWindowMs });
  return {
    id: g.id,
    kind: step.kind,
    table: g.table,
    dependsOn: g.dependsOn,
    forward: p.forward,
    rollback: p.rollback,
    isReversible: p.isReversible ?? true,
    lock: p.lock,
    isOnline: p.online,
  };
}

export interface RolloutPlan {
  name: string;
  layers: StepDescription[][];
  steps: StepDescription[];
  tables: string[];
}

export function planRollout(spec: RolloutSpec): RolloutPlan {
  const graph = normalizeGraph(spec.steps, qualifiedName(spec.table)).map((g) => ({ ...g, table: qualifiedName(g.table) }));
  const byId = new Map(graph.map((g, i) => [g.id, describeStep(itemAt(spec.steps, i, 'step'), g, spec.rollbackWindow)]));
  const ls = layers(graph).map((layer) => layer.map((g) => byId.get(g.id)!));
  return { name: spec.name, layers: ls, steps: [...byId.values()], tables: [...new Set(graph.map((g) => g.table))] };
}

export function formatRolloutPlan(plan: RolloutPlan): string {
  const lines = [`rollout ${plan.name} on ${plan.tables.join(', ')}: ${plan.steps.length} steps in ${plan.layers.length} layers`];
  plan.layers.forEach((layer, i) => {
    lines.push(`layer ${i + 1}${layer.length > 1 ? ' (run together)' : ''}:`);
    for (const s of layer) {
      lines.push(`  ${s.id} [${s.kind} on ${s.table}]${s.dependsOn.length ? ` after ${s.dependsOn.join(', ')}` : ''}`);
      lines.push(`    do:       ${s.forward}`);
      lines.push(
        `    lock:     ${s.lock}; ${s.isOnline ? 'online (reads and writes go on)' : 'not online (may block writers while it runs)'}`,
      );
      lines.push(`    rollback: ${s.rollback}`);
    }
  });
  return lines.join('\n');
}

export function formatMermaid(plan: RolloutPlan): string {
  const node = (id: string) => `s_${id.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const lines = ['graph TD'];
  for (const table of plan.tables) {
    lines.push(`  subgraph ${node(table)}["${table}"]`);
    for (const s of plan.steps.filter((x) => x.table === table))
      lines.push(`    ${node(s.id)}["${s.id}: ${s.kind}${s.isReversible ? '' : ' (irreversible)'}"]`);
    lines.push('  end');
  }
  for (const s of plan.steps) for (const dep of s.dependsOn) lines.push(`  ${node(dep)} --> ${node(s.id)}`);
  return lines.join('\n');
}
