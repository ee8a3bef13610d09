import os from 'node:os';
import crypto from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowHandle, WorkflowIdReusePolicy, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { BackfillSpec } from '../spec';
import { backfillWorkflowId, qualifiedName } from '../plan/ids';
import { SA, initialSearchAttributes } from '../workflows/search-attributes';
import {
  pauseSignal,
  resumeSignal,
  approveSignal,
  rollbackSignal,
  retrySignal,
  progressQuery,
  setThrottleUpdate,
  ThrottleChange,
  ThrottleSettings,
  ActorPayload,
} from '../workflows/definitions';
import type { BackfillWorkflowInput } from '../workflows/backfill';
import type { StagefillConnection } from './connection';

export class AlreadyRunningError extends Error {
  constructor(
    message: string,
    readonly workflowId: string,
  ) {
    super(message);
  }
}

export class NotFoundError extends Error {}

/** A control that does not apply to this run (approve on a backfill, a throttle value out of range): the operator's input is wrong. */
export class NotApplicableError extends Error {}

export interface StartedRun {
  workflowId: string;
  runId: string;
}

export interface StartBackfillOptions {
  restart?: boolean;
  replay?: { from: string; to: string };
  runForMs?: number;
  leaseMs?: number;
  workflowId?: string;
  actor?: string;
}

/** Who is acting, for the audit trail: $STAGEFILL_ACTOR, else user@host. */
export function defaultActor(): string {
  return process.env.STAGEFILL_ACTOR || `${os.userInfo().username}@${os.hostname()}`;
}

export function specSummary(spec: BackfillSpec): Record<string, unknown> {
  return {
    kind: 'backfill',
    name: spec.name,
    table: qualifiedName(spec.table),
    key: spec.key,
    chunkSize: spec.chunkSize,
    parallelism: spec.parallelism,
    transformHash: crypto.createHash('sha256').update(spec.transform).digest('hex').slice(0, 16),
    window: spec.window ? `${spec.window.start} for ${spec.window.duration}ms ${spec.window.timeZone ?? 'UTC'}` : undefined,
  };
}

/** Starts (or, after a failure, continues) a backfill; refuses while one with the same name runs. */
export async function startBackfill(conn: StagefillConnection, spec: BackfillSpec, opts: StartBackfillOptions = {}): Promise<StartedRun> {
  const table = qualifiedName(spec.table);
  const workflowId = opts.workflowId ?? backfillWorkflowId(table, spec.name) + (opts.replay ? `:replay:${Date.now()}` : '');
  const input: BackfillWorkflowInput = { spec, restart: opts.restart, replay: opts.replay, runForMs: opts.runForMs, leaseMs: opts.leaseMs };
  try {
    const handle = await conn.client.workflow.start('backfillWorkflow', {
      taskQueue: conn.taskQueue,
      workflowId,
      args: [input],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      memo: { summary: specSummary(spec), startedBy: opts.actor ?? defaultActor() },
      typedSearchAttributes: initialSearchAttributes('backfill', [table], spec.name),
    });
    return { workflowId, runId: handle.firstExecutionRunId };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new AlreadyRunningError(`backfill "${spec.name}" on ${table} is already running as ${workflowId}; pause, cancel or wait for it`, workflowId);
    }
    throw err;
  }
}

function handle(conn: StagefillConnection, workflowId: string): WorkflowHandle {
  return conn.client.workflow.getHandle(workflowId);
}

async function mustExist<T>(workflowId: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new NotFoundError(`no workflow ${workflowId}; \`stagefill list\` shows what exists`);
    throw err;
  }
}

export async function getProgress<T = Record<string, unknown>>(conn: StagefillConnection, workflowId: string): Promise<T & { workflowStatus: string }> {
  return mustExist(workflowId, async () => {
    const h = handle(conn, workflowId);
    const [desc, progress] = await Promise.all([h.describe(), h.query(progressQuery)]);
    return { ...(progress as T), workflowStatus: desc.status.name };
  });
}

export async function describeRun(conn: StagefillConnection, workflowId: string) {
  return mustExist(workflowId, () => handle(conn, workflowId).describe());
}

export type ControlVerb = 'pause' | 'resume' | 'approve' | 'rollback' | 'retry';
const SIGNALS = { pause: pauseSignal, resume: resumeSignal, approve: approveSignal, rollback: rollbackSignal, retry: retrySignal };

/** Verbs only a rollout answers; a backfill would silently drop the signal. */
const ROLLOUT_ONLY: ControlVerb[] = ['approve', 'rollback', 'retry'];

export async function sendControl(conn: StagefillConnection, workflowId: string, verb: ControlVerb, payload: ActorPayload = {}): Promise<void> {
  if (ROLLOUT_ONLY.includes(verb)) {
    const desc = await describeRun(conn, workflowId);
    if (desc.type === 'backfillWorkflow') {
      throw new NotApplicableError(`${verb}: ${workflowId} is a backfill; ${verb} applies to rollouts (a backfill is paused, resumed, throttled or cancelled)`);
    }
  }
  await mustExist(workflowId, () => handle(conn, workflowId).signal(SIGNALS[verb], { by: payload.by ?? defaultActor(), reason: payload.reason }));
}

export async function cancelRun(conn: StagefillConnection, workflowId: string): Promise<void> {
  await mustExist(workflowId, () => handle(conn, workflowId).cancel());
}

export async function setThrottle(conn: StagefillConnection, workflowId: string, change: ThrottleChange): Promise<ThrottleSettings> {
  try {
    return await mustExist(workflowId, () => handle(conn, workflowId).executeUpdate(setThrottleUpdate, { args: [change] }));
  } catch (err) {
    // the workflow's validator refused the change before it reached history: the input was wrong
    if (err instanceof WorkflowUpdateFailedError) throw new NotApplicableError(err.cause?.message ?? err.message);
    throw err;
  }
}

/** Waits for the run to close; resolves with its result, rejects with its failure. */
export async function waitForRun<T = unknown>(conn: StagefillConnection, workflowId: string): Promise<T> {
  return mustExist(workflowId, () => handle(conn, workflowId).result() as Promise<T>);
}

export interface ListFilter {
  kind?: 'backfill' | 'rollout';
  table?: string;
  state?: string;
  limit?: number;
}

export interface RunSummary {
  workflowId: string;
  runId: string;
  type: string;
  status: string;
  kind?: string;
  tables?: string[];
  state?: string;
  startTime: string;
  closeTime?: string;
}

/** Lists runs through stagefill's search attributes (visibility query). */
export async function listRuns(conn: StagefillConnection, filter: ListFilter = {}): Promise<RunSummary[]> {
  const clauses = [`StagefillKind IN ('backfill', 'rollout')`];
  const quote = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (filter.kind) clauses.push(`StagefillKind = ${quote(filter.kind)}`);
  if (filter.table) clauses.push(`StagefillTables = ${quote(qualifiedName(filter.table))}`);
  if (filter.state) clauses.push(`StagefillState = ${quote(filter.state)}`);
  const out: RunSummary[] = [];
  for await (const wf of conn.client.workflow.list({ query: clauses.join(' AND ') })) {
    const sa = wf.typedSearchAttributes;
    out.push({
      workflowId: wf.workflowId,
      runId: wf.runId,
      type: wf.type,
      status: wf.status.name,
      kind: sa.get(SA.kind),
      tables: sa.get(SA.tables),
      state: sa.get(SA.state),
      startTime: wf.startTime.toISOString(),
      closeTime: wf.closeTime?.toISOString(),
    });
    if (out.length >= (filter.limit ?? 100)) break;
  }
  return out;
}
