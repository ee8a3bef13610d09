import type { Queryable } from '../pool';
import { own } from '../identifiers';
import { recordEvent, listEvents } from '../backfill/backfills';
import type { RolloutRow, StepRow } from './rollouts';
import type { CheckResult } from '../../core/rollout/checks';

/**
 * What a rollout leaves on record in stagefill's own tables: its audit events
 * (keyed ones written once each), its gate results (and the read-only query a
 * gate check runs), and the whole record `stagefill history` prints. The
 * rollout and step rows themselves are in db/rollout/rollouts.ts.
 */

export async function recordRolloutEvent(
  db: Queryable,
  e: { workflowId: string; event: string; subject?: string | null; detail?: unknown; actor?: string | null },
): Promise<void> {
  await recordEvent(db, { ...e, kind: 'rollout' });
}

export interface KeyedAuditEntry {
  /** Unique within the workflow id: a second insert of the same key is a no-op. */
  key: string;
  event: string;
  subject?: string | null;
  detail?: unknown;
  actor?: string | null;
  /** When the workflow saw it (workflow time), ISO. */
  at?: string;
}

/** Writes audit entries once each (ON CONFLICT on the audit key), in the order given. */
export async function recordKeyedEvents(db: Queryable, workflowId: string, entries: KeyedAuditEntry[]): Promise<number> {
  if (!entries.length) return 0;
  const res = await db.query(
    `INSERT INTO ${own('events')} (workflow_id, kind, subject, event, detail, actor, audit_key, at)
     SELECT $1, 'rollout', x->>'subject', x->>'event', NULLIF(x->'detail', 'null'::jsonb), x->>'actor', x->>'key', COALESCE((x->>'at')::timestamptz, clock_timestamp())
       FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS t(x, n)
      ORDER BY t.n
     ON CONFLICT (workflow_id, audit_key) WHERE audit_key IS NOT NULL DO NOTHING`,
    [
      workflowId,
      // only the entry's own fields; one left out reads as NULL (`at`: the database's time)
      JSON.stringify(entries.map(({ key, event, subject, detail, actor, at }) => ({ key, event, subject, detail, actor, at }))),
    ],
  );
  return res.rowCount ?? 0;
}

/** Runs an operator's check query read-only and returns the first column of the first row as Postgres prints it. */
export async function readOnlyScalar(db: Queryable, text: string, statementTimeoutMs: number): Promise<string | null> {
  await db.query('SET TRANSACTION READ ONLY');
  await db.query(`SELECT set_config('statement_timeout', $1, true)`, [`${statementTimeoutMs}ms`]);
  // Text as Postgres prints it (no JS number or Date conversion), by position (column names may repeat).
  const r = await db.query<(string | null)[]>({ text, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
  return r.rows[0]?.[0] ?? null;
}

/** One check's result (core/rollout/checks.ts) for one attempt at a gate; a retried attempt overwrites its row. */
export async function recordGateResult(
  db: Queryable,
  g: { rolloutId: number; stepId: string; attempt: number } & CheckResult,
): Promise<void> {
  await db.query(
    `INSERT INTO ${own('gate_results')} (rollout_id, step_id, attempt, check_name, ok, value, expected, deviation, error)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (rollout_id, step_id, attempt, check_name)
     DO UPDATE SET ok = EXCLUDED.ok, value = EXCLUDED.value, expected = EXCLUDED.expected, deviation = EXCLUDED.deviation, error = EXCLUDED.error, at = clock_timestamp()`,
    [g.rolloutId, g.stepId, g.attempt, g.name, g.ok, g.value, g.expected, g.deviation, g.error ?? null],
  );
}

export interface GateResultRow {
  step_id: string;
  attempt: number;
  check_name: string;
  ok: boolean;
  value: string | null;
  expected: string;
  deviation: number | null;
  error: string | null;
  at: Date;
}

export interface RolloutAudit {
  rollout: RolloutRow;
  steps: StepRow[];
  gateResults: GateResultRow[];
  events: Awaited<ReturnType<typeof listEvents>>;
}

/** Everything recorded about the latest rollout of a workflow id, for `stagefill history`; undefined when none. */
export async function rolloutAudit(db: Queryable, workflowId: string): Promise<RolloutAudit | undefined> {
  const { rows } = await db.query<RolloutRow>(`SELECT * FROM ${own('rollouts')} WHERE workflow_id = $1 ORDER BY id DESC LIMIT 1`, [
    workflowId,
  ]);
  const rollout = rows[0];
  if (!rollout) return undefined;
  const { rows: steps } = await db.query<StepRow>(
    `SELECT * FROM ${own('rollout_steps')} WHERE rollout_id = $1 ORDER BY started_at NULLS LAST, step_id`,
    [rollout.id],
  );
  const { rows: gateResults } = await db.query<GateResultRow>(
    `SELECT step_id, attempt, check_name, ok, value, expected, deviation, error, at FROM ${own('gate_results')} WHERE rollout_id = $1 ORDER BY at, step_id, check_name`,
    [rollout.id],
  );
  const events = (await listEvents(db, workflowId)).filter((e) => e.at >= rollout.started_at);
  return { rollout, steps, gateResults, events };
}
