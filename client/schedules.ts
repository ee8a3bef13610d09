import type { ScheduleSpec } from '@temporalio/client';
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { backfillWorkflowId } from '../core/common/ids';
import { qualifiedName } from '../core/common/table-name';
import { initialSearchAttributes } from '../workflows/search-attributes';
import type { BackfillWorkflowInput } from '../workflows/backfill/workflow';
import type { StagefillConnection } from './connection';
import { defaultActor, specSummary } from './operations';
import { NotFoundError, ScheduleExistsError, UsageError } from './errors';
import type { BackfillSpec } from '../core/common/fields';
import type { SearchAttributePair } from '@temporalio/common';
import type { FleetSpec } from '../steps/fleet-spec';
import type { FleetWorkflowInput } from '../workflows/fleet/fleet';
import { fleetWorkflowId } from '../core/fleet/ids';
import { SA } from '../workflows/search-attributes';

/**
 * Overnight windows as Temporal Schedules: each firing starts the backfill
 * with `runForMs`, so it stops cleanly as `window_closed` when the window
 * ends; the next firing continues from the checkpoints, because a backfill's
 * checkpoints belong to (table, name), not to a workflow id.
 */

export interface CreateScheduleOptions {
  /** Cron expressions ("0 1 * * *"), interpreted in `timeZone`. */
  cron?: string;
  /** Or a fixed interval in ms (tests, or "every 6h"). */
  everyMs?: number;
  /** How long each firing may work (ms); without it a firing runs until the backfill is done. */
  windowMs?: number;
  timeZone?: string;
  scheduleId?: string;
  paused?: boolean;
  actor?: string;
  /** A lease's length; passed through to each run (tests use short ones). */
  leaseMs?: number;
}

export interface ScheduleInfo {
  scheduleId: string;
  table?: string;
  name?: string;
  cron?: string;
  everyMs?: number;
  timeZone?: string;
  windowMs?: number;
  isPaused: boolean;
  note?: string;
  nextRuns: string[];
  recentRuns: { workflowId: string; scheduledAt: string }[];
}

export function defaultScheduleId(spec: BackfillSpec): string {
  return `stagefill-schedule:${qualifiedName(spec.table)}:${spec.name}`;
}

/**
 * A scheduled run's workflow id: Temporal appends the firing time, and the
 * ":scheduled" part keeps it apart from a manual start's id (which has none),
 * while the prefix still names the backfill for `stagefill history`.
 */
export function scheduledWorkflowIdPrefix(spec: BackfillSpec): string {
  return `${backfillWorkflowId(spec.table, spec.name)}:scheduled`;
}

export async function createSchedule(conn: StagefillConnection, spec: BackfillSpec, opts: CreateScheduleOptions): Promise<ScheduleInfo> {
  const input: BackfillWorkflowInput = { spec, runForMs: opts.windowMs, leaseMs: opts.leaseMs };
  const scheduleId = opts.scheduleId ?? defaultScheduleId(spec);
  const table = qualifiedName(spec.table);
  return createStagefillSchedule(conn, opts, {
    scheduleId,
    workflowType: 'backfillWorkflow',
    workflowId: scheduledWorkflowIdPrefix(spec),
    input,
    summary: specSummary(spec),
    searchAttributes: initialSearchAttributes('backfill', [table], spec.name),
    memo: { kind: 'backfill', table, name: spec.name },
  });
}

/** Why a fleet cannot be scheduled (its change is a rollout, its targets come from a catalog query), or undefined. */
export function fleetScheduleRefusal(spec: FleetSpec): string | undefined {
  if (spec.change.kind !== 'backfill')
    return `change.kind: schedules run backfills, and fleet ${spec.name} changes its targets with a ${spec.change.kind}; start it with \`stagefill start\``;
  if (spec.targets)
    return 'targets.query: a schedule would run the names the query returned when it was created on every firing; name the targets in the waves (names, tags) or start the fleet with `stagefill start` each time';
  return undefined;
}

export function defaultFleetScheduleId(spec: FleetSpec): string {
  return `stagefill-schedule:fleet:${spec.name}`;
}

/**
 * A fleet of a backfill in windows: each firing starts the fleet with the window as its `runForMs`; no target starts
 * after the window ends, each target's backfill stops cleanly at its end, and the fleet ends `window_closed`. The
 * next firing, a new fleet, runs every target again: each backfill continues from its checkpoints in its target's
 * database (a done one finishes at once).
 */
export async function createFleetSchedule(conn: StagefillConnection, spec: FleetSpec, opts: CreateScheduleOptions): Promise<ScheduleInfo> {
  const refusal = fleetScheduleRefusal(spec);
  if (refusal) throw new UsageError(refusal);
  const createdBy = opts.actor ?? defaultActor();
  const input: FleetWorkflowInput = {
    spec,
    actor: `schedule (created by ${createdBy})`,
    ...(opts.windowMs ? { runForMs: opts.windowMs } : {}),
  };
  return createStagefillSchedule(conn, opts, {
    scheduleId: opts.scheduleId ?? defaultFleetScheduleId(spec),
    workflowType: 'fleetWorkflow',
    workflowId: `${fleetWorkflowId(spec.name)}:scheduled`,
    input,
    summary: { kind: 'fleet', change: `${spec.change.kind} ${spec.change.name}`, waves: spec.waves.map((w) => w.name) },
    searchAttributes: [
      { key: SA.kind, value: 'fleet' },
      { key: SA.state, value: 'starting' },
      { key: SA.name, value: spec.name },
      { key: SA.fleet, value: spec.name },
    ],
    memo: { kind: 'fleet', table: qualifiedName(spec.change.table), name: spec.name },
  });
}

async function createStagefillSchedule(
  conn: StagefillConnection,
  opts: CreateScheduleOptions,
  a: {
    scheduleId: string;
    workflowType: string;
    workflowId: string;
    input: unknown;
    summary: unknown;
    searchAttributes: SearchAttributePair[];
    memo: { kind: string; table: string; name: string };
  },
): Promise<ScheduleInfo> {
  if (Boolean(opts.cron) === Boolean(opts.everyMs)) throw new Error('a schedule needs exactly one of cron or everyMs');
  const { scheduleId } = a;
  const scheduleSpec: ScheduleSpec = opts.cron
    ? { cronExpressions: [opts.cron], timezone: opts.timeZone }
    : { intervals: [{ every: opts.everyMs! }] };
  const createdBy = opts.actor ?? defaultActor();
  try {
    await conn.client.schedule.create({
      scheduleId,
      spec: scheduleSpec,
      action: {
        type: 'startWorkflow',
        workflowType: a.workflowType,
        workflowId: a.workflowId,
        taskQueue: conn.taskQueue,
        args: [a.input],
        memo: { summary: a.summary, startedBy: `schedule ${scheduleId} (created by ${createdBy})` },
        typedSearchAttributes: a.searchAttributes,
      },
      // Never two firings at once: a night that overruns makes the next one skip, not pile up.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
      // The server keeps cron only in its compiled calendar form: the memo keeps what the operator typed.
      memo: {
        stagefill: {
          ...a.memo,
          cron: opts.cron ?? null,
          everyMs: opts.everyMs ?? null,
          timeZone: opts.timeZone ?? null,
          windowMs: opts.windowMs ?? null,
          createdBy,
        },
      },
      state: { paused: opts.paused },
    });
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) {
      throw new ScheduleExistsError(
        `schedule ${scheduleId} already exists; delete it first (stagefill schedule delete ${scheduleId}) or pass --id for a second one`,
      );
    }
    throw err;
  }
  return describeSchedule(conn, scheduleId);
}

async function mustExist<T>(scheduleId: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError)
      throw new NotFoundError(`no schedule ${scheduleId}; \`stagefill schedule list\` shows what exists`);
    throw err;
  }
}

type StagefillMemo = {
  table?: string;
  name?: string;
  cron?: string | null;
  everyMs?: number | null;
  timeZone?: string | null;
  windowMs?: number | null;
};

/** What describe() and list() both report of a schedule: its state and its recent and next runs. */
interface ScheduleView {
  state: { paused: boolean; note?: string };
  info: { nextActionTimes: Date[]; recentActions: { scheduledAt: Date; action: { workflow: { workflowId: string } } }[] };
}

function scheduleInfo(scheduleId: string, memo: StagefillMemo, s: ScheduleView): ScheduleInfo {
  return {
    scheduleId,
    table: memo.table,
    name: memo.name,
    cron: memo.cron ?? undefined,
    everyMs: memo.everyMs ?? undefined,
    timeZone: memo.timeZone ?? undefined,
    windowMs: memo.windowMs ?? undefined,
    isPaused: s.state.paused,
    note: s.state.note,
    nextRuns: s.info.nextActionTimes.map((t) => t.toISOString()),
    recentRuns: s.info.recentActions.map((a) => ({ workflowId: a.action.workflow.workflowId, scheduledAt: a.scheduledAt.toISOString() })),
  };
}

export async function describeSchedule(conn: StagefillConnection, scheduleId: string): Promise<ScheduleInfo> {
  const d = await mustExist(scheduleId, () => conn.client.schedule.getHandle(scheduleId).describe());
  return scheduleInfo(scheduleId, (d.memo?.stagefill as StagefillMemo | undefined) ?? {}, d);
}

/** stagefill's schedules (those with its memo), newest state from the server. */
export async function listSchedules(conn: StagefillConnection): Promise<ScheduleInfo[]> {
  const out: ScheduleInfo[] = [];
  for await (const s of conn.client.schedule.list()) {
    const memo = s.memo?.stagefill as StagefillMemo | undefined;
    if (memo) out.push(scheduleInfo(s.scheduleId, memo, s));
  }
  return out.sort((a, b) => a.scheduleId.localeCompare(b.scheduleId));
}

export async function pauseSchedule(conn: StagefillConnection, scheduleId: string, note?: string): Promise<void> {
  await mustExist(scheduleId, () => conn.client.schedule.getHandle(scheduleId).pause(note ?? `paused by ${defaultActor()}`));
}

export async function unpauseSchedule(conn: StagefillConnection, scheduleId: string, note?: string): Promise<void> {
  await mustExist(scheduleId, () => conn.client.schedule.getHandle(scheduleId).unpause(note ?? `unpaused by ${defaultActor()}`));
}

/** Deletes the schedule; a firing already running goes on until its window closes. */
export async function deleteSchedule(conn: StagefillConnection, scheduleId: string): Promise<void> {
  await mustExist(scheduleId, () => conn.client.schedule.getHandle(scheduleId).delete());
}
