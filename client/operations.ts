import os from 'node:os';
import type { WorkflowHandle } from '@temporalio/client';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { backfillWorkflowId } from '../core/common/ids';
import { qualifiedName } from '../core/common/table-name';
import { backfillSummary } from '../steps/summary';
import { hashTransform } from '../core/common/hash';
import { SA, initialSearchAttributes } from '../workflows/search-attributes';
import type { ActorPayload } from '../workflows/definitions';
import {
  pauseSignal,
  resumeSignal,
  approveSignal,
  rollbackSignal,
  retrySignal,
  progressQuery,
  setThrottleUpdate,
} from '../workflows/definitions';
import type { BackfillWorkflowInput } from '../workflows/backfill/workflow';
import type { StagefillConnection } from './connection';
import { NotFoundError, NotApplicableError, RunClosedError, NoWorkerError } from './errors';
import { readRouting } from '../worker/routing';
import { noWorkerMessage } from '../core/common/worker-routing';
import type { StartedRun } from './start';
import { startWorkflow } from './start';
import type { BackfillSpec } from '../core/common/fields';
import type { ThrottleChange, ThrottleSettings } from '../core/backfill/throttle';

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

/** A backfill's memo summary as the client knows it before the run: backfillSummary with the transform's hash. */
export function specSummary(spec: BackfillSpec): Record<string, unknown> {
  return backfillSummary(spec, { transformHash: hashTransform(spec.transform) });
}

/** Starts (or, after a failure, continues) a backfill; refuses while one with the same name runs. */
export async function startBackfill(conn: StagefillConnection, spec: BackfillSpec, opts: StartBackfillOptions = {}): Promise<StartedRun> {
  const table = qualifiedName(spec.table);
  const workflowId = opts.workflowId ?? backfillWorkflowId(table, spec.name) + (opts.replay ? `:replay:${Date.now()}` : '');
  const input: BackfillWorkflowInput = { spec, restart: opts.restart, replay: opts.replay, runForMs: opts.runForMs, leaseMs: opts.leaseMs };
  return startWorkflow(conn, {
    workflowType: 'backfillWorkflow',
    workflowId,
    input,
    memo: { summary: specSummary(spec), startedBy: opts.actor ?? defaultActor() },
    searchAttributes: initialSearchAttributes('backfill', [table], spec.name),
    alreadyRunning: `backfill "${spec.name}" on ${table} is already running as ${workflowId}; pause, cancel or wait for it`,
  });
}

function handle(conn: StagefillConnection, workflowId: string): WorkflowHandle {
  return conn.client.workflow.getHandle(workflowId);
}

/**
 * Runs a call on the workflow; the server's "not found" means either no such
 * workflow or (for signals, updates, cancels) one that has closed: told apart here.
 */
async function mustExist<T>(workflowId: string, fn: () => Promise<T>, conn?: StagefillConnection, verb?: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    const status = conn
      ? await handle(conn, workflowId)
          .describe()
          .then(
            (d) => d.status.name,
            () => undefined,
          )
      : undefined;
    if (status && status !== 'RUNNING') throw closedError(workflowId, status, verb);
    throw new NotFoundError(`no workflow ${workflowId}; \`stagefill list\` shows what exists`);
  }
}

function closedError(workflowId: string, status: string, verb = 'that'): RunClosedError {
  const closed = status.toLowerCase().replace(/_/g, ' ');
  return new RunClosedError(
    `${workflowId}: run is ${closed}; ${verb} applies only to a running run (\`stagefill status ${workflowId}\` shows how it ended)`,
    status,
  );
}

export async function getProgress<T = Record<string, unknown>>(
  conn: StagefillConnection,
  workflowId: string,
): Promise<T & { workflowStatus: string }> {
  return mustExist(workflowId, async () => {
    const h = handle(conn, workflowId);
    const [desc, progress] = await Promise.all([h.describe(), h.query(progressQuery).catch((err: unknown) => ({ queryFailed: err }))]);
    if (progress && typeof progress === 'object' && 'queryFailed' in progress) {
      // a query no worker answers: say why when the queue belongs to a deployment version nobody polls for
      const routing = await readRouting(conn.client.workflowService, conn.client.options.namespace, desc.taskQueue).catch(() => undefined);
      const why = routing && noWorkerMessage(workflowId, desc.taskQueue, routing.current, routing.pollers);
      if (why) throw new NoWorkerError(why);
      throw progress.queryFailed;
    }
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

export async function sendControl(
  conn: StagefillConnection,
  workflowId: string,
  verb: ControlVerb,
  payload: ActorPayload = {},
): Promise<void> {
  if (ROLLOUT_ONLY.includes(verb)) {
    const desc = await describeRun(conn, workflowId);
    if (desc.type === 'backfillWorkflow') {
      throw new NotApplicableError(
        `${verb}: ${workflowId} is a backfill; ${verb} applies to rollouts (a backfill is paused, resumed, throttled or cancelled)`,
      );
    }
  }
  await mustExist(
    workflowId,
    () => handle(conn, workflowId).signal(SIGNALS[verb], { by: payload.by ?? defaultActor(), reason: payload.reason }),
    conn,
    verb,
  );
}

export async function cancelRun(conn: StagefillConnection, workflowId: string): Promise<void> {
  // the server accepts a cancel request for a closed run and does nothing: say so instead
  const desc = await describeRun(conn, workflowId);
  if (desc.status.name !== 'RUNNING') throw closedError(workflowId, desc.status.name, 'cancel');
  await mustExist(workflowId, () => handle(conn, workflowId).cancel(), conn, 'cancel');
}

export async function setThrottle(conn: StagefillConnection, workflowId: string, change: ThrottleChange): Promise<ThrottleSettings> {
  try {
    return await mustExist(
      workflowId,
      () => handle(conn, workflowId).executeUpdate(setThrottleUpdate, { args: [change] }),
      conn,
      'throttle',
    );
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
  kind?: 'backfill' | 'rollout' | 'fleet';
  /** A fleet's name: the fleet and its targets' rollouts or backfills (StagefillFleet). */
  fleet?: string;
  table?: string;
  /** A StagefillState (paused, held, waiting_approval, ...); `running` is every run whose workflow is running, whatever its state. */
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
  /** The fleet it is, or belongs to. */
  fleet?: string;
  startTime: string;
  closeTime?: string;
}

/** Lists runs through stagefill's search attributes (visibility query). */
export async function listRuns(conn: StagefillConnection, filter: ListFilter = {}): Promise<RunSummary[]> {
  const clauses = [`StagefillKind IN ('backfill', 'rollout', 'fleet')`];
  const quote = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (filter.kind) clauses.push(`StagefillKind = ${quote(filter.kind)}`);
  if (filter.fleet) clauses.push(`StagefillFleet = ${quote(filter.fleet)}`);
  if (filter.table) clauses.push(`StagefillTables = ${quote(qualifiedName(filter.table))}`);
  // `running` is every live run, whatever it is doing (waiting for approval, paused, held): "what is running?"
  if (filter.state === 'running') clauses.push(`ExecutionStatus = 'Running'`);
  else if (filter.state) clauses.push(`StagefillState = ${quote(filter.state)}`);
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
      fleet: sa.get(SA.fleet),
      startTime: wf.startTime.toISOString(),
      closeTime: wf.closeTime?.toISOString(),
    });
    if (out.length >= (filter.limit ?? 100)) break;
  }
  return out;
}
