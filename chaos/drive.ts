import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { AlreadyRunningError } from '../client/errors';
import { sleep } from '../devstack';
import { progressQuery, approveSignal, rollbackSignal, type RolloutProgress } from '../workflows/definitions';
import { startRollout } from '../client/runs';
import type { StagefillConnection } from '../client/connection';
import type { RolloutSpec } from '../steps/spec';
import { seeded, type Rng } from './rng';

/**
 * What every run's driver does the same way: start a workflow once whatever the faults, wait for it to close, read
 * its outcome, count live writes, run a live writer. Every error of the stack is a fault to wait out.
 */

/** Writes a live writer made: acked ones committed; uncertain ones failed in a way that may have committed. */
export interface LiveCount {
  acked: number;
  uncertain: number;
}

export const noWrites = (): LiveCount => ({ acked: 0, uncertain: 0 });

/** Runs `fn` until it succeeds: the stack may be mid-fault (PostgreSQL or Temporal down). Gives up after ~5 minutes. */
export async function persist<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 300) throw err;
      await sleep(1000);
    }
  }
}

/** Starts a workflow (its id back); a start that reached the server before the fault runs, and is the one. */
export function startOnce(start: () => Promise<{ workflowId: string }>): Promise<string> {
  return persist(async () => {
    try {
      return (await start()).workflowId;
    } catch (err) {
      if (err instanceof AlreadyRunningError) return err.workflowId;
      throw err;
    }
  });
}

/**
 * Polls until the workflow has closed (true) or `isStopping` (false), running `each` (e.g. the approval) between
 * polls; every error is a fault to wait out.
 */
export async function untilClosed(handle: WorkflowHandle, isStopping: () => boolean, each?: () => Promise<void>): Promise<boolean> {
  while (!isStopping()) {
    try {
      const d = await handle.describe();
      if (d.status.name !== 'RUNNING') return true;
      await each?.();
    } catch {
      // Temporal or every worker away: the run is still there when it comes back
    }
    await sleep(1000);
  }
  return false;
}

/** The closed workflow's outcome: completed, rolled_back (with why), or failed: <message>. */
export async function outcomeOf(handle: WorkflowHandle, rec: { rollbackReason?: string | null }): Promise<string> {
  try {
    const result = (await handle.result()) as { state: string; rollbackReason?: string | null };
    rec.rollbackReason = result.rollbackReason ?? null;
    return result.state;
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const cause = err.cause as { message?: string; type?: string; details?: unknown[] } | undefined;
    const details = cause?.details?.[0] as { state?: string; rollbackReason?: string | null } | undefined;
    if (details?.state) {
      rec.rollbackReason = details.rollbackReason ?? null;
      return details.state;
    }
    return `failed: ${cause?.type ?? ''} ${cause?.message ?? err.message}`.trim();
  }
}

/** Connection refused or not made: the write never reached the server, so it surely did not commit. */
function neverSent(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    e.code === 'ECONNREFUSED' ||
    /timeout exceeded when trying to connect|Connection terminated due to connection timeout/.test(e.message ?? '')
  );
}

export async function countInto(count: LiveCount, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
    count.acked++;
  } catch (err) {
    if (!neverSent(err)) count.uncertain++;
  }
}

/** A loop of live writes (`write` counts each one) until stopped, one every ~`everyMs`. */
export function liveWriter(seed: number, everyMs: number, write: (r: Rng) => Promise<void>): { stop(): Promise<void> } {
  // its own generator: how many writes land depends on timing, and must not shift the campaign's draws
  const r = seeded(seed);
  let isStopping = false;
  const loop = (async () => {
    while (!isStopping) {
      await write(r);
      await sleep(r.int(everyMs / 2, (everyMs * 3) / 2));
    }
  })();
  return {
    async stop() {
      isStopping = true;
      await loop;
    },
  };
}

/** The campaign's answer at a rollout's approval step, once: approve or roll back as decided. */
export function answerApproval(handle: WorkflowHandle, rec: { signals: LiveCount }, decision: 'approve' | 'rollback'): () => Promise<void> {
  return async () => {
    if (rec.signals.acked > 0) return;
    const p = (await handle.query(progressQuery)) as RolloutProgress;
    if (p.state !== 'waiting_approval') return;
    await countInto(rec.signals, () =>
      decision === 'approve'
        ? handle.signal(approveSignal, { by: 'chaos' })
        : handle.signal(rollbackSignal, { by: 'chaos', reason: 'the campaign rolls back at approval' }),
    );
  };
}

/** A rollout started once, its approval answered as decided, followed to its end (its outcome on the record); the live writer stopped either way. */
export async function runRollout(
  conn: StagefillConnection,
  spec: RolloutSpec,
  rec: { workflowId: string; outcome?: string; signals: LiveCount; rollbackReason?: string | null },
  decision: 'approve' | 'rollback',
  isStopping: () => boolean,
  writer: { stop(): Promise<void> },
): Promise<void> {
  try {
    rec.workflowId = await startOnce(() => startRollout(conn, spec, { actor: 'chaos' }));
    const handle = conn.client.workflow.getHandle(rec.workflowId);
    if (await untilClosed(handle, isStopping, answerApproval(handle, rec, decision)))
      rec.outcome = await persist(() => outcomeOf(handle, rec));
  } finally {
    await writer.stop();
  }
}
