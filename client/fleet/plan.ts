import type { FleetSpec } from '../../steps/fleet-spec';
import { changeTables } from '../../steps/fleet-spec';
import { planWaves, allowedFailures, WavePlanError, type PlannedWave } from '../../core/fleet/waves';
import { shapeDifferences, type ShapeDifference } from '../../core/fleet/shape';
import { createPool } from '../../db/pool';
import { readTableShapes } from '../../db/fleet/shape';
import { fleetTargetsOf } from './resolve';
import type { StagefillConnection } from '../connection';
import { askWorkers } from './targets';
import type { TargetTableShape } from '../../db/fleet/shape';
import { planWithRefusal, type PlanFormat } from '../plan-output';
import { formatDuration } from '../../core/common/duration';
import { itemAt } from '../../core/common/checked';

export interface FleetPlan {
  name: string;
  change: { kind: string; name: string; tables: string[] };
  onShapeMismatch: 'refuse' | 'skip';
  /** With `targets.query`: the names the catalog query returned (the waves pick among them). */
  queried?: string[];
  /** Null without a targets file: the waves' rules only. */
  waves: (PlannedWave & {
    rule: string;
    parallelism: number;
    onFailure: string;
    allowedFailures: number | null;
    approval: boolean;
    /** The wave's soak, in words ("3 checks every 30s for 10m"); absent without one. */
    soak?: string;
  })[];
  unassigned: string[];
  /** Targets whose tables differ from the others' (or cannot be read). */
  differences: ShapeDifference[];
  refusal: string | null;
  /** The target the change's own plan reads its tables from (the first of the first wave); its URL only from a targets file. */
  planTarget?: { name: string; url?: string };
  /** Without a targets file: the worker processes asked, and why any did not answer (its targets are not in the plan). */
  workers?: ({ process: string; targets: number } | { process: string; error: string })[];
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
 * `stagefill plan` of a fleet: the targets from the targets file given, or
 * without one from every worker process serving fleets on the task queue
 * (asked on Temporal, their tables' shapes read by the workers), the waves
 * they fall in, and each target's tables against the others'. Read-only.
 */
export async function planFleet(spec: FleetSpec, targetsFile: string | undefined, conn?: StagefillConnection): Promise<FleetPlan> {
  const tables = changeTables(spec.change);
  const asked = !targetsFile && conn ? await askWorkers(conn, { tables }) : undefined;
  const targets = await fleetTargetsOf(spec, { file: targetsFile, ...(asked ? { workers: () => Promise.resolve(asked.targets) } : {}) });
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
  let shapes: TargetTableShape[];
  if (asked) {
    const wanted = new Set(inWaves);
    shapes = (asked.shapes ?? []).filter((x) => wanted.has(x.target));
  } else {
    const pools = new Map(targets.map((t) => [t.name, createPool({ url: t.url!, max: 1, applicationName: 'stagefill-plan' })]));
    try {
      shapes = await readTableShapes(inWaves, tables, (n) => pools.get(n)!);
    } finally {
      await Promise.all([...pools.values()].map((p) => p.end().catch(() => {})));
    }
  }
  const differences: ShapeDifference[] = shapes
    .filter((x) => x.error)
    .map((x) => ({ target: x.target, table: x.table, differences: [`cannot be read: ${x.error}`] }));
  for (const table of tables)
    differences.push(
      ...shapeDifferences(
        table,
        shapes.filter((x) => x.table === table && !x.error),
      ),
    );
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
        ...(rule.soak
          ? {
              soak: `${rule.soak.checks.length} check${rule.soak.checks.length === 1 ? '' : 's'} every ${formatDuration(rule.soak.everyMs)} for ${formatDuration(rule.soak.durationMs)}`,
            }
          : {}),
      };
    }),
    unassigned: planned.unassigned,
    differences,
    refusal,
    planTarget: targets.find((t) => t.name === inWaves[0]),
    ...(asked ? { workers: asked.processes } : {}),
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
      `  ${i + 1}. ${w.name} (${w.rule}): ${w.targets.length} target${w.targets.length === 1 ? '' : 's'}, parallelism ${w.parallelism}, ${failures}${w.soak ? `, then soak: ${w.soak} on each target` : ''}${w.approval ? ', then wait for approve' : ''}`,
    );
    if (w.targets.length) lines.push(`     ${w.targets.join(', ')}`);
  });
  if (p.unassigned.length) lines.push(`not in any wave (left alone): ${p.unassigned.join(', ')}`);
  for (const w of p.workers ?? []) if ('error' in w) lines.push(`worker process ${w.process} ${w.error}: its targets are not in this plan`);
  if (p.differences.length) {
    lines.push(`targets whose tables differ (${p.onShapeMismatch === 'skip' ? 'skipped' : 'the fleet is refused'}):`);
    for (const d of p.differences) lines.push(`  ${d.target}: ${d.differences.join('; ')}`);
  } else lines.push('every target has the same table shape');
  const readFrom = p.planTarget?.url
    ? ` (tables read from ${p.planTarget.name})`
    : p.planTarget
      ? ' (not read from a target: its URL is with the workers; pass --targets to read it)'
      : '';
  lines.push('', `the change on each target${readFrom}:`, changeText);
  return lines.join('\n');
}

/** The plan's text (or JSON) and why the fleet cannot start as written, or null. */
export async function planFleetWithRefusal(
  spec: FleetSpec,
  format: PlanFormat,
  targetsFile: string | undefined,
  conn?: StagefillConnection,
): Promise<{ text: string; refusal: string | null }> {
  const plan = await planFleet(spec, targetsFile, conn);
  // the change's own plan as `stagefill plan` prints it for one database, read from the first target (its URL stays here)
  const saved = process.env.DATABASE_URL;
  let change;
  try {
    // asked of the workers, the client has no URL: the change's plan without its tables
    if (plan.planTarget?.url) process.env.DATABASE_URL = plan.planTarget.url;
    else if (plan.planTarget) delete process.env.DATABASE_URL;
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
