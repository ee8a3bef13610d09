import type { RolloutSpec } from '../steps/spec';
import { createPool } from '../db/pool';
import { readColumnObjects } from '../db/rollout/column-objects';
import type { ColumnObjects, DuplicationPlan } from '../core/rollout/alter-column/duplication-types';
import { planColumnChange, leftOutOf, type AlterColumnRef, type RolloutStepRef } from '../core/rollout/alter-column/plan-column-change';
import { physicalColumnsOf, type PlacedStep, type PhysicalColumn } from '../core/rollout/columns';
import { normalizeGraph } from '../steps/graph';
import { versionSchemaPattern } from '../core/rollout/object-names';
import { formatLeftOut, type LeftOutReference, canonicalType } from '../core/rollout/alter-column/key-references';
import { missingTableRefusals, missingChildContracts } from '../core/rollout/refusals';
import { existingTables, indexesThatCannotFollow } from '../db/rollout/preflight';
import { qualifiedName } from '../core/common/table-name';
import { itemAt } from '../core/common/checked';

/**
 * `stagefill plan` for a rollout's column changes: which physical column
 * each step touches, and, read from the table when DATABASE_URL is set,
 * every object of each altered column with what expand builds for it and
 * what contract drops, renames and attaches. Read-only.
 */

export interface ColumnChangePlan {
  physicalColumns: PhysicalColumn[];
  tables: {
    table: string;
    step: string;
    column: string;
    duplication?: DuplicationPlan;
    /** Columns referencing this one that the rollout does not change with it: `plan` and `start` refuse the rollout. */
    leftOut?: LeftOutReference[];
    /** What else the catalog says would stop this column's change after its data moved (a child without its contract, an index that cannot take the new type): refused too. */
    refusals?: { object: string; message: string }[];
    note?: string;
  }[];
  /** Tables the rollout's steps work on that do not exist, one line each: `plan` and `start` refuse the rollout. */
  missingTables?: string[];
}

function placed(spec: RolloutSpec): PlacedStep[] {
  const graph = normalizeGraph(spec.steps, qualifiedName(spec.table));
  return spec.steps.map((step, i) => {
    const g = itemAt(graph, i, 'graph step');
    return { id: g.id, table: qualifiedName(g.table), step };
  });
}

export async function columnChangePlan(spec: RolloutSpec, databaseUrl = process.env.DATABASE_URL): Promise<ColumnChangePlan> {
  const steps = placed(spec);
  const alters = steps.filter((s) => s.step.kind === 'alterColumn');
  const out: ColumnChangePlan = { physicalColumns: physicalColumnsOf(steps), tables: [] };
  if (!databaseUrl) {
    out.tables = alters.map((s) => ({
      table: s.table,
      step: s.id,
      column: (s.step as { column: string }).column,
      note: 'set DATABASE_URL to list the objects of the column that expand duplicates and contract drops, renames and attaches',
    }));
    return out;
  }
  const pool = createPool({ url: databaseUrl, max: 1, applicationName: 'stagefill-plan' });
  try {
    const existing = await existingTables(pool, [...new Set(steps.map((s) => s.table))]);
    const missing = missingTableRefusals(steps, qualifiedName(spec.table), (t) => existing.has(t));
    if (missing.length) out.missingTables = missing;
    for (const s of alters) {
      const step = s.step as { column: string; newName?: string; newType?: string };
      if (!existing.has(s.table)) {
        out.tables.push({ table: s.table, step: s.id, column: step.column, note: `${s.table} does not exist` });
        continue;
      }
      const objects = await readColumnObjects(pool, s.table, step.column, versionSchemaPattern(s.table));
      if (!objects.exists) {
        out.tables.push({ table: s.table, step: s.id, column: step.column, note: `${s.table} has no column "${step.column}"` });
        continue;
      }
      const refusals = [
        ...missingChildContracts(steps, { id: s.id, table: s.table, column: step.column }, objects.referencedBy),
        ...(await indexesRefusingType(pool, s.table, step, objects)),
      ];
      out.tables.push({ ...alterColumnPreview(steps, s.id, objects), ...(refusals.length ? { refusals } : {}) });
    }
  } finally {
    await pool.end();
  }
  return out;
}

/**
 * What `plan` shows of one alterColumn's contract from its old column's
 * objects: the plan contract runs (the one planner, planColumnChange) and the
 * referencing columns the rollout leaves out. Pure.
 */
export function alterColumnPreview(steps: RolloutStepRef[], stepId: string, objects: ColumnObjects): ColumnChangePlan['tables'][number] {
  const s = steps.find((x) => x.id === stepId && x.step.kind === 'alterColumn') as AlterColumnRef | undefined;
  if (!s) throw new Error(`step "${stepId}" is not an alterColumn of the rollout`);
  const leftOut = leftOutOf(steps, s, objects);
  return {
    table: s.table,
    step: s.id,
    column: s.step.column,
    duplication: planColumnChange(steps, s.id, objects),
    ...(leftOut.length ? { leftOut } : {}),
  };
}

/** The indexes of the column (its own and its unique constraints') that Postgres would not build over the new type: found now, not after the backfill. */
async function indexesRefusingType(
  pool: ReturnType<typeof createPool>,
  table: string,
  step: { column: string; newType?: string },
  objects: Awaited<ReturnType<typeof readColumnObjects>>,
): Promise<{ object: string; message: string }[]> {
  if (step.newType === undefined || canonicalType(step.newType) === canonicalType(objects.type)) return [];
  const indexes = [
    ...objects.uniques.map((u) => ({ name: u.index, indexTail: u.indexTail })),
    ...objects.indexes.map((x) => ({ name: x.name, indexTail: x.indexTail })),
  ];
  // a probe that cannot run (no TEMP privilege, a type Postgres does not know) finds nothing: expand's ADD COLUMN names a wrong type
  const failed = await indexesThatCannotFollow(pool, table, step.column, step.newType, indexes).catch(() => []);
  return failed.map((f) => ({
    object: `index ${f.index}`,
    message: `index ${f.index} of ${table} cannot be built over ${step.column} as ${step.newType} (${f.error}), so its counterpart would fail after the backfill. Fix: drop it in a sql step before the alterColumn and create it again after contract in a form the new type accepts, or choose a newType it accepts`,
  }));
}

export function formatColumnChangePlan(p: ColumnChangePlan): string {
  const lines: string[] = [];
  for (const m of p.missingTables ?? []) lines.push(`REFUSED  ${m}`);
  const moved = p.physicalColumns.filter((c) => c.column !== c.physical || c.alteredBy);
  if (moved.length) {
    lines.push('logical names:');
    for (const c of moved)
      lines.push(
        `  step ${c.id}: ${c.table ? `${c.table}.` : ''}${c.column} is the physical column ${c.physical}${c.alteredBy ? ` (the new column of step ${c.alteredBy})` : ''}`,
      );
  }
  for (const t of p.tables) {
    lines.push(`contract of ${t.table}.${t.column} (step ${t.step}):`);
    if (t.note) {
      lines.push(`  ${t.note}`);
      continue;
    }
    const d = t.duplication!;
    for (const l of t.leftOut ?? []) lines.push(`  REFUSED  ${l.object}: ${l.message}`);
    for (const r of t.refusals ?? []) lines.push(`  REFUSED  ${r.object}: ${r.message}`);
    for (const problem of d.problems) lines.push(`  REFUSED  ${problem.object}: ${problem.message}`);
    lines.push(`  drop     column ${t.column} and every object on it`);
    if (d.newColumn !== d.finalName) lines.push(`  rename   column ${d.newColumn} to ${d.finalName}`);
    for (const a of d.actions.filter((x) => x.phase === 'contract' || x.phase === 'afterContract')) {
      const what =
        a.op === 'renameConstraint' || a.op === 'renameIndex'
          ? `rename   ${a.from} to ${a.to} (${a.object})`
          : a.op === 'attachUnique'
            ? `attach   ${a.object} USING INDEX ${a.index}`
            : a.op === 'dropConstraint'
              ? `drop     ${a.object} (added again over ${d.finalName})`
              : a.op === 'dropHelperCheck'
                ? `drop     the NOT NULL helper check ${a.name}`
                : `${a.op.padEnd(8)} ${a.object}`;
      lines.push(`  ${what}`);
    }
    const built = d.actions.filter((x) => x.phase === 'expand' || x.phase === 'afterBackfill').map((x) => `${x.op} ${x.object}`);
    if (built.length) lines.push(`  built before contract: ${built.join('; ')}`);
  }
  return lines.join('\n');
}

/**
 * Why the rollout cannot start as written, or null: `plan` and `start` exit 2
 * with it. A table that does not exist, a referencing column left out of a
 * key's change, and what would stop an altered column after its data moved
 * (a child without its contract, an index that cannot take the new type, an
 * object stagefill cannot carry over, which the expand step refuses too).
 */
export function rolloutRefusal(p: ColumnChangePlan): string | null {
  const parts: string[] = [];
  for (const m of p.missingTables ?? []) parts.push(`rollout refused: ${m} (nothing was started or changed)`);
  const left = p.tables.flatMap((t) => (t.leftOut ?? []).map((l) => ({ step: t.step, l })));
  if (left.length) {
    const steps = [...new Set(left.map((x) => `"${x.step}"`))].join(', ');
    parts.push(
      `rollout refused: step ${steps} changes a key without every column referencing it (nothing was started or changed):\n${formatLeftOut(left.map((x) => x.l))}`,
    );
  }
  for (const t of p.tables) {
    const found = [...(t.refusals ?? []), ...(t.duplication?.problems ?? [])];
    if (found.length)
      parts.push(
        `rollout refused: step "${t.step}" (alterColumn of ${t.table}.${t.column}) would stop after its data moved (nothing was started or changed):\n${found.map((r) => `${r.object}: ${r.message}`).join('\n')}`,
      );
  }
  return parts.length ? parts.join('\n') : null;
}

/**
 * `start`'s check before anything starts, when DATABASE_URL is set. A database
 * the client cannot reach does not stop the start (the worker may reach it where
 * this machine does not): the expand step applies the same rule from the
 * worker's side.
 */
export async function refusalBeforeStart(
  spec: RolloutSpec,
  databaseUrl = process.env.DATABASE_URL,
  warn: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<string | null> {
  if (!databaseUrl) return null;
  try {
    return rolloutRefusal(await columnChangePlan(spec, databaseUrl));
  } catch (err) {
    warn(
      `stagefill: could not read the tables to check the rollout before it starts (${(err as Error)?.message ?? String(err)}); its expand step checks again`,
    );
    return null;
  }
}
