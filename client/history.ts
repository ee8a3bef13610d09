import type { Pool } from 'pg';
import { findBackfill } from '../db/backfill/backfills';
import type { GenerationSummary, LinkedBackfill } from '../db/audit';
import { generationSummaries, linkedBackfills, eventsOfRuns } from '../db/audit';
import { rolloutAudit } from '../db/rollout/audit';
import { stepBackfillName } from '../core/common/hash';
import { normalizeGraph } from '../steps/graph';
import type { RolloutSpec } from '../steps/spec';
import { formatRange } from '../core/backfill/keys';
import { qualifiedName } from '../core/common/table-name';
import { itemAt } from '../core/common/checked';

/**
 * `stagefill history`: the audit trail as stagefill's own tables keep it, so
 * it is still there after Temporal's retention has dropped the workflow.
 */

export interface AuditEvent {
  /** The run it belongs to: the asked id, or one of its runs (a schedule's firing, a rollout's child). */
  workflowId?: string;
  at: string;
  kind: string;
  subject: string | null;
  event: string;
  detail: unknown;
  actor: string | null;
}

export interface RunHistory {
  workflowId: string;
  events: AuditEvent[];
  backfill?: {
    table: string;
    name: string;
    /** The key's columns, comma-separated (a composite key's values read as tuples). */
    key: string;
    state: string;
    generation: number;
    lastError: string | null;
    generations: GenerationSummary[];
  };
  rollout?: {
    name: string;
    tables: string[];
    state: string;
    reason: string | null;
    actor: string | null;
    startedAt: string;
    finishedAt: string | null;
    /** `state` in the words `status` uses: a step that never ran in a finished rollout is `skipped`. */
    steps: {
      id: string;
      kind: string;
      table: string;
      state: string;
      effect: string;
      actor: string | null;
      startedAt: string | null;
      finishedAt: string | null;
    }[];
    gateResults: {
      step: string;
      attempt: number;
      check: string;
      ok: boolean;
      value: string | null;
      expected: string;
      deviation: number | null;
      error: string | null;
      at: string;
    }[];
    catalogCheck: { table: string; equal: boolean; diff: string[] }[] | null;
    /** The backfills its steps ran as child workflows, with the generations this rollout started and their checkpoint hashes. */
    backfills: LinkedBackfill[];
  };
}

const FINISHED = new Set(['completed', 'rolled_back', 'failed', 'cancelled']);

/** The (table, name) of every backfill a rollout's steps start. */
export function rolloutBackfillRefs(spec: RolloutSpec): { step: string; table: string; name: string }[] {
  const graph = normalizeGraph(spec.steps, qualifiedName(spec.table));
  return spec.steps.flatMap((step, i) => {
    const g = itemAt(graph, i, 'graph step');
    const table = qualifiedName(g.table);
    if (step.kind === 'addColumn' || step.kind === 'alterColumn') return [{ step: g.id, table, name: stepBackfillName(spec.name, g.id) }];
    if (step.kind === 'backfill')
      return [{ step: g.id, table: qualifiedName(step.table ?? g.table), name: step.name ?? `${spec.name}.${g.id}` }];
    return [];
  });
}

/** The runs whose events belong to a backfill's history: a schedule's firings (`...:scheduled-<time>`), and under the plain id every run of it. */
function runPrefixes(workflowId: string): string[] {
  if (workflowId.endsWith(':scheduled')) return [`${workflowId}-`];
  return workflowId.split(':').length === 3 ? [`${workflowId}:`] : [];
}

/**
 * The backfill a workflow id names: manual starts are
 * `stagefill-backfill:<table>:<name>`, scheduled runs and replays append more
 * after a ':' (names and tables never contain one).
 */
export function backfillOfWorkflowId(workflowId: string): { table: string; name: string } | undefined {
  const [prefix, table, name] = workflowId.split(':');
  return prefix === 'stagefill-backfill' && table && name ? { table, name } : undefined;
}

export async function readHistory(db: Pool, workflowId: string): Promise<RunHistory> {
  const ref0 = backfillOfWorkflowId(workflowId);
  const events = (await eventsOfRuns(db, workflowId, ref0 ? runPrefixes(workflowId) : [])).map(({ workflowId: id, ...e }) => ({
    ...(id === workflowId ? {} : { workflowId: id }),
    ...e,
    at: e.at.toISOString(),
  }));
  const out: RunHistory = { workflowId, events };
  const audit = workflowId.startsWith('stagefill-rollout:') ? await rolloutAudit(db, workflowId) : undefined;
  if (audit) {
    const r = audit.rollout;
    // the latest rollout under this id: its own events, not those of an earlier run with the same name
    out.events = audit.events.map((e) => ({ ...e, at: e.at.toISOString() }));
    out.rollout = {
      name: r.name,
      tables: r.tables,
      state: r.state,
      reason: r.reason,
      actor: r.actor,
      startedAt: r.started_at.toISOString(),
      finishedAt: r.finished_at?.toISOString() ?? null,
      steps: audit.steps.map((s) => ({
        id: s.step_id,
        kind: s.kind,
        table: s.table_name,
        // the workflow marks steps that never ran `skipped` when the rollout ends; the row of such a step stays `pending`
        state: s.state === 'pending' && FINISHED.has(r.state) ? 'skipped' : s.state,
        effect: s.effect,
        actor: s.actor,
        startedAt: s.started_at?.toISOString() ?? null,
        finishedAt: s.finished_at?.toISOString() ?? null,
      })),
      gateResults: audit.gateResults.map((g) => ({
        step: g.step_id,
        attempt: g.attempt,
        check: g.check_name,
        ok: g.ok,
        value: g.value,
        expected: g.expected,
        deviation: g.deviation,
        error: g.error,
        at: g.at.toISOString(),
      })),
      catalogCheck: r.catalog_check,
      backfills: await linkedBackfills(db, rolloutBackfillRefs(r.spec as RolloutSpec), r.started_at),
    };
  }
  const ref = backfillOfWorkflowId(workflowId);
  if (ref) {
    const row = await findBackfill(db, ref.table, ref.name);
    if (row) {
      out.backfill = {
        table: row.table_name,
        name: row.name,
        key: row.key_column,
        state: row.state,
        generation: row.generation,
        lastError: row.last_error,
        generations: await generationSummaries(db, Number(row.id)),
      };
    }
  }
  return out;
}

const fmtRows = (n: number) => n.toLocaleString('en-US');

export function formatHistory(h: RunHistory): string {
  const lines: string[] = [`history of ${h.workflowId}`];
  if (h.rollout) {
    const r = h.rollout;
    lines.push(
      `rollout ${r.name} on ${r.tables.join(', ')}: ${r.state}${r.reason ? ` (${r.reason})` : ''}, started ${r.startedAt}${r.actor ? ` by ${r.actor}` : ''}${r.finishedAt ? `, finished ${r.finishedAt}` : ''}`,
    );
    lines.push('steps:');
    for (const s of r.steps) {
      lines.push(
        `  ${s.state.padEnd(11)} ${s.id} (${s.kind} on ${s.table}) effect ${s.effect}${s.startedAt ? ` ${s.startedAt}` : ''}${s.finishedAt ? ` .. ${s.finishedAt}` : ''}${s.actor ? ` by ${s.actor}` : ''}`,
      );
    }
    if (r.gateResults.length) lines.push('gate results:');
    for (const g of r.gateResults) {
      lines.push(
        `  ${g.at} ${g.step} #${g.attempt} ${g.check}: ${g.ok ? 'pass' : 'FAIL'} value ${g.value ?? 'null'}, expected ${g.expected}${g.deviation ? `, off by ${g.deviation}` : ''}${g.error ? `, error: ${g.error}` : ''}`,
      );
    }
    for (const b of r.backfills) {
      lines.push(
        `backfill ${b.name} on ${b.table} (workflow ${b.workflowId ?? '-'}): ${b.state}${b.lastError ? `, last error: ${b.lastError}` : ''}`,
      );
      for (const g of b.generations)
        lines.push(
          `  generation ${g.generation} (${g.reason}): ${fmtRows(g.rowsDone)}/${fmtRows(g.rowsPlanned)} rows in ${fmtRows(g.chunks)} chunks, transform ${g.transformHash}, checkpoint hash ${g.checkpointHash ?? '-'}`,
        );
    }
    const isUndone = r.state === 'rolled_back' || r.state === 'cancelled';
    for (const c of r.catalogCheck ?? []) {
      if (isUndone)
        lines.push(
          `catalog of ${c.table} after rollback: ${c.equal ? 'identical to before the rollout' : `differs: ${c.diff.join('; ')}`}`,
        );
      else lines.push(`catalog of ${c.table} after the rollout (${r.state}): ${c.equal ? 'unchanged' : `changed: ${c.diff.join('; ')}`}`);
    }
  }
  if (h.backfill) {
    const b = h.backfill;
    lines.push(
      `backfill ${b.name} on ${b.table}: ${b.state}, generation ${b.generation}${b.lastError ? `, last error: ${b.lastError}` : ''}`,
    );
    for (const g of b.generations) {
      const span =
        g.firstCommitAt && g.lastCommitAt
          ? `${(Math.max(0, new Date(g.lastCommitAt).getTime() - new Date(g.firstCommitAt).getTime()) / 1000).toFixed(1)}s`
          : '-';
      lines.push(
        `  generation ${g.generation} (${g.reason}, ${g.createdAt.toISOString()}): range ${formatRange(g.rangeFrom, g.rangeTo, b.key.split(',').length)}, transform ${g.transformHash}`,
        `    ${fmtRows(g.rowsDone)}/${fmtRows(g.rowsPlanned)} rows in ${fmtRows(g.chunks)} checkpointed chunks, partitions ${g.partitionsDone}/${g.partitions} done, ` +
          `chunk p50 ${g.chunkMsP50 ?? '-'}ms p95 ${g.chunkMsP95 ?? '-'}ms, first to last commit ${span}, workers ${g.workers.length ? g.workers.join(', ') : '-'}, checkpoint hash ${g.checkpointHash ?? '-'}`,
      );
    }
  }
  lines.push(h.events.length ? 'events:' : 'no events recorded for this workflow id');
  for (const e of h.events) {
    const detail = e.detail === null || e.detail === undefined ? '' : ` ${JSON.stringify(e.detail)}`;
    lines.push(
      `  ${e.at}${e.workflowId ? ` (${e.workflowId})` : ''} ${e.kind} ${e.event}${e.subject ? ` [${e.subject}]` : ''}${e.actor ? ` by ${e.actor}` : ''}${detail}`,
    );
  }
  return lines.join('\n');
}
