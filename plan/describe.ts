import type { RolloutSpec, RolloutStep } from '../spec';
import { normalizeGraph, layers, GraphStep } from './graph';
import { formatDuration } from './duration';
import { describeExpect } from './expect';
import { qualifiedName } from './table-name';

/** What a step does to the schema going forward, and what its rollback does. Pure: for `plan` and the audit. */
export interface StepDescription {
  id: string;
  kind: string;
  table: string;
  dependsOn: string[];
  forward: string;
  rollback: string;
  isReversible: boolean;
}

export function describeStep(step: RolloutStep, g: GraphStep, rollbackWindowMs: number): StepDescription {
  const t = g.table;
  const d = (forward: string, rollback: string, isReversible = true): StepDescription => ({ id: g.id, kind: step.kind, table: t, dependsOn: g.dependsOn, forward, rollback, isReversible });
  switch (step.kind) {
    case 'addColumn':
      return d(
        `ADD COLUMN ${step.column} ${step.type}${step.default ? ` DEFAULT ${step.default}` : ''}; dual-write trigger sets it to (${step.up}) on every insert/update; backfill existing rows with the same expression`,
        `drop the trigger and column ${step.column}`,
      );
    case 'alterColumn': {
      const target = step.newName ?? `${step.column}_stagefill_new`;
      return d(
        `ADD COLUMN ${target}${step.newType ? ` ${step.newType}` : ''}; two-way triggers keep ${step.column} and ${target} in sync (up: ${step.up}; down: ${step.down}); backfill ${target}`,
        `drop the triggers and column ${target}; ${step.column} untouched`,
      );
    }
    case 'setNotNull':
      return d(`ADD CONSTRAINT CHECK (${step.column} IS NOT NULL) NOT VALID, then VALIDATE (no long lock), then SET NOT NULL`, `DROP NOT NULL and drop the check`);
    case 'addCheck':
      return d(`ADD CONSTRAINT ${step.name} CHECK (${step.expression}) NOT VALID, then VALIDATE CONSTRAINT`, `DROP CONSTRAINT ${step.name}`);
    case 'sql':
      return d(`run: ${oneLine(step.apply)}`, `run: ${oneLine(step.revert)}`);
    case 'backfill':
      return d(`backfill ${qualifiedName(step.table ?? t)} in chunks of ${step.chunkSize} on ${step.key}, ${step.parallelism} lanes: ${oneLine(step.transform)}`, 'nothing to undo in the schema (the rows written belong to columns a later rollback drops)');
    case 'gate':
      return d(`check ${step.checks.map((c) => `${c.name} ${c.unchanged ? 'unchanged' : describeExpect(c.expect!, c.tolerance)}`).join(', ')}; on failure: ${step.onFailure}`, 'nothing (read-only)');
    case 'expose':
      return d(`create view schema ${viewSchemaName(t, step.version)} and set the read-path flag of ${t} to v${step.version}${step.percent < 100 ? ` for ${step.percent}% of readers` : ''}`, `drop the v${step.version} views and set the flag back to the previous version`);
    case 'soak':
      return d(`re-run ${step.checks.length} check(s) every ${formatDuration(step.every)} for ${formatDuration(step.duration)}; any breach: ${step.onFailure}`, 'nothing (read-only)');
    case 'approval':
      return d(`wait up to ${formatDuration(step.timeout)} for \`approve\`; on timeout: ${step.onTimeout}`, 'nothing');
    case 'contract':
      return d(
        `IRREVERSIBLE: after the rollback window (${formatDuration(rollbackWindowMs)}) since expose, drop the old columns${step.drops?.length ? ` (${step.drops.join(', ')})` : ''}, the rollout's triggers and the older views`,
        'cannot be rolled back: the old data is gone',
        false,
      );
  }
}

/** The view schema of one version of a table: `<schema>_<table>_v<n>`. */
export function viewSchemaName(table: string, version: number): string {
  const [schema, name] = qualifiedName(table).split('.');
  return `${schema}_${name}_v${version}`.slice(0, 63);
}

function oneLine(sql: string): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

export interface RolloutPlan {
  name: string;
  layers: StepDescription[][];
  steps: StepDescription[];
  tables: string[];
}

export function planRollout(spec: RolloutSpec): RolloutPlan {
  const graph = normalizeGraph(spec.steps, qualifiedName(spec.table)).map((g) => ({ ...g, table: qualifiedName(g.table) }));
  const byId = new Map(graph.map((g, i) => [g.id, describeStep(spec.steps[i], g, spec.rollbackWindow)]));
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
    for (const s of plan.steps.filter((x) => x.table === table)) lines.push(`    ${node(s.id)}["${s.id}: ${s.kind}${s.isReversible ? '' : ' (irreversible)'}"]`);
    lines.push('  end');
  }
  for (const s of plan.steps) for (const dep of s.dependsOn) lines.push(`  ${node(dep)} --> ${node(s.id)}`);
  return lines.join('\n');
}
