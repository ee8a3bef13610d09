import { createPool, ping } from '../../db/pool';
import { loadTargetsFile, TargetsFileError } from '../../worker/fleet/targets-file';
import { UsageError } from '../errors';
import { randomUUID } from 'node:crypto';
import type { StagefillConnection } from '../connection';
import type { FleetTargetsInput, FleetTargetsResult } from '../../workflows/fleet/served';

export interface TargetStatus {
  name: string;
  tags: Record<string, string>;
  answers: boolean;
  /** Why it does not answer. */
  error?: string;
  /** Asked of the workers: the worker processes serving it. */
  workers?: string[];
}

/** What the worker processes serving fleets on the connection's task queue serve (each answers for its own targets file), asked on Temporal. */
export async function askWorkers(conn: StagefillConnection, input: FleetTargetsInput): Promise<FleetTargetsResult> {
  return conn.client.workflow.execute<(input: FleetTargetsInput) => Promise<FleetTargetsResult>>('fleetTargetsWorkflow', {
    workflowId: `stagefill-fleet-targets:${randomUUID()}`,
    taskQueue: conn.taskQueue,
    args: [input],
    // no worker on the task queue: the gather waits this long for one, then the workflow times out
    workflowExecutionTimeout: '10 minutes',
  });
}

/** `stagefill targets` without a file: every target the worker processes serve, and whether each answers the process serving it. */
export async function listServedTargets(
  conn: StagefillConnection,
): Promise<{ targets: TargetStatus[]; processes: FleetTargetsResult['processes'] }> {
  const r = await askWorkers(conn, { probe: true });
  return {
    targets: r.targets.map((t) => ({
      name: t.name,
      tags: t.tags,
      answers: t.answers ?? false,
      ...(t.error !== undefined ? { error: t.error } : {}),
      workers: t.workers,
    })),
    processes: r.processes,
  };
}

/** The targets file the CLI was given (--targets or STAGEFILL_TARGETS); a missing or bad file is a usage error (exit 2). */
export function targetsOfFile(targetsFile: string | undefined): ReturnType<typeof loadTargetsFile> {
  if (!targetsFile) throw new UsageError('--targets: not set; pass the targets file the workers read (or set STAGEFILL_TARGETS)');
  try {
    return loadTargetsFile(targetsFile);
  } catch (err) {
    if (err instanceof TargetsFileError) throw new UsageError(err.message);
    throw err;
  }
}

/** `stagefill targets`: every target of the targets file the workers read, and whether its database answers (a few at a time). */
export async function listTargets(targetsFile: string | undefined): Promise<TargetStatus[]> {
  const targets = targetsOfFile(targetsFile);
  const out: TargetStatus[] = [];
  const queue = [...targets];
  const probe = async () => {
    for (let t = queue.shift(); t; t = queue.shift()) {
      const pool = createPool({ url: t.url, max: 1, applicationName: 'stagefill-targets' });
      try {
        await ping(pool);
        out.push({ name: t.name, tags: t.tags, answers: true });
      } catch (err) {
        out.push({ name: t.name, tags: t.tags, answers: false, error: (err as Error).message });
      } finally {
        await pool.end().catch(() => {});
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, targets.length) }, probe));
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

export function formatTargets(list: TargetStatus[], empty = 'no targets in the file'): string {
  if (!list.length) return empty;
  return list
    .map((t) => {
      const tags = Object.entries(t.tags)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      const workers = t.workers ? `\t${t.workers.join(',')}` : '';
      return `${t.name}\t${tags || '-'}\t${t.answers ? 'answers' : `does not answer: ${t.error}`}${workers}`;
    })
    .join('\n');
}
