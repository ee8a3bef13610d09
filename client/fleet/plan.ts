import type { FleetSpec } from '../../steps/fleet-spec';
import { changeTables } from '../../steps/fleet-spec';
import { planWaves, allowedFailures, WavePlanError, type PlannedWave } from '../../core/fleet/waves';
import { shapeDifferences, type ShapeDifference } from '../../core/fleet/shape';
import { createPool } from '../../db/pool';
import { readTableShapes } from '../../db/fleet/shape';
import { fleetTargetsOf } from './resolve';
import { planWithRefusal, type PlanFormat } from '../plan-output';
import { itemAt } from '../../core/common/checked';

export interface FleetPlan {
  name: string;
  change: { kind: string; name: string; tables: string[] };
  onShapeMismatch: 'refuse' | 'skip';
  /** With `targets.query`: the names the catalog query returned (the waves pick among them). */
  queried?: string[];
  /** Null without a targets file: the waves' rules only. */
  waves: (PlannedWave & { rule: string; parallelism: number; onFailure: string; allowedFailures: number | null; approval: boolean })[];
  unassigned: string[];
  /** Targets whose tables differ from the others' (or cannot be read). */
  differences: ShapeDifference[];
  refusal: string | null;
  /** The target the change's own plan reads its tables from (the first of the first wave). */
  planTarget?: { name: string; url: string };
}

const ruleText = (w: FleetSpec['waves'][number]) =>
  'names' in w.select
    ? `names ${w.select.names.join(', ')}`
    : 'tags' in w.select
      ? `tags ${Object.entries(w.select.tags)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')}`
      : w.select.share === 'rest'
        ? 'the rest'
        : `${w.select.share}% of the rest`;

/**
 * `stagefill plan` of a fleet: the targets from the targets file (the one the
 * workers read), the waves they fall in, and each target's tables against the
 * others'. Read-only.
 */
export async function planFleet(spec: FleetSpec, targetsFile: string | undefined): Promise<FleetPlan> {
  const tables = changeTables(spec.change);
  const targets = await fleetTargetsOf(spec, targetsFile);
  let planned;
  let refusal: string | null = null;
  try {
    planned = planWaves(targets, spec.waves);
  } catch (err) {
    if (!(err instanceof WavePlanError)) throw err;
    planned = { waves: spec.waves.map((w) => ({ name: w.name, targets: [] })), unassigned: [] };
    refusal = err.message;
  }
  const inWaves = planned.waves.flatMap((w) => w.targets);
  const pools = new Map(targets.map((t) => [t.name, createPool({ url: t.url, max: 1, applicationName: 'stagefill-plan' })]));
  let differences: ShapeDifference[] = [];
  try {
    const shapes = await readTableShapes(inWaves, tables, (n) => pools.get(n)!);
    differences = shapes
      .filter((s) => s.error)
      .map((s) => ({ target: s.target, table: s.table, differences: [`cannot be read: ${s.error}`] }));
    for (const table of tables)
      differences.push(
        ...shapeDifferences(
          table,
          shapes.filter((s) => s.table === table && !s.error),
        ),
      );
  } finally {
    await Promise.all([...pools.values()].map((p) => p.end().catch(() => {})));
  }
  if (!refusal && differences.length && spec.onShapeMismatch === 'refuse')
    refusal = `targets differ from the others: ${differences.map((d) => `${d.target}: ${d.differences.join('; ')}`).join(' | ')} (fix them, or set onShapeMismatch: skip)`;
  return {
    name: spec.name,
    change: { kind: spec.change.kind, name: spec.change.name, tables },
    onShapeMismatch: spec.onShapeMismatch,
    ...(spec.targets ? { queried: targets.map((t) => t.name) } : {}),
    waves: planned.waves.map((w, i) => {
      const rule = itemAt(spec.waves, i, 'wave rule');
      const allowed = allowedFailures(rule, w.targets.length);
      return {
        ...w,
        rule: ruleText(rule),
        parallelism: rule.parallelism,
        onFailure: rule.onFailure,
        allowedFailures: Number.isFinite(allowed) ? allowed : null,
        approval: rule.approval,
      };
    }),
    unassigned: planned.unassigned,
    differences,
    refusal,
    planTarget: targets.find((t) => t.name === inWaves[0]),
  };
}

export function formatFleetPlan(p: FleetPlan, changeText: string): string {
  const lines = [`fleet ${p.name}: ${p.change.kind} ${p.change.name} on ${p.change.tables.join(', ')}`];
  if (p.queried)
    lines.push(
      `targets: the ${p.queried.length} the catalog query returned (start runs it again and pins the waves to the names it returns then)`,
    );
  lines.push('waves:');
  p.waves.forEach((w, i) => {
    const failures =
      w.onFailure === 'halt' ? 'halt at the first failure' : `continue up to ${w.allowedFailures ?? 'any number of'} failures`;
    lines.push(
      `  ${i + 1}. ${w.name} (${w.rule}): ${w.targets.length} target${w.targets.length === 1 ? '' : 's'}, parallelism ${w.parallelism}, ${failures}${w.approval ? ', then wait for approve' : ''}`,
    );
    if (w.targets.length) lines.push(`     ${w.targets.join(', ')}`);
  });
  if (p.unassigned.length) lines.push(`not in any wave (left alone): ${p.unassigned.join(', ')}`);
  if (p.differences.length) {
    lines.push(`targets whose tables differ (${p.onShapeMismatch === 'skip' ? 'skipped' : 'the fleet is refused'}):`);
    for (const d of p.differences) lines.push(`  ${d.target}: ${d.differences.join('; ')}`);
  } else lines.push('every target has the same table shape');
  lines.push('', `the change on each target${p.planTarget ? ` (tables read from ${p.planTarget.name})` : ''}:`, changeText);
  return lines.join('\n');
}

/** The plan's text (or JSON) and why the fleet cannot start as written, or null. */
export async function planFleetWithRefusal(
  spec: FleetSpec,
  format: PlanFormat,
  targetsFile: string | undefined,
): Promise<{ text: string; refusal: string | null }> {
  const plan = await planFleet(spec, targetsFile);
  // the change's own plan as `stagefill plan` prints it for one database, read from the first target (its URL stays here)
  const saved = process.env.DATABASE_URL;
  let change;
  try {
    if (plan.planTarget) process.env.DATABASE_URL = plan.planTarget.url;
    change = await planWithRefusal(spec.change, format === 'mermaid' ? 'text' : format);
  } finally {
    if (saved === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = saved;
  }
  const refusal = plan.refusal ?? (change.refusal && `${plan.planTarget?.name ?? 'the change'}: ${change.refusal}`);
  const { planTarget, ...shown } = plan;
  if (format === 'json')
    return {
      text: JSON.stringify({ ...shown, planTarget: planTarget?.name ?? null, changePlan: JSON.parse(change.text) as unknown }, null, 2),
      refusal,
    };
  return { text: formatFleetPlan(plan, change.text), refusal };
}
