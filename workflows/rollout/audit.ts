/**
 * The rollout's durable audit: entries queue in workflow state and an
 * awaited activity writes them, oldest first, each keyed by the rollout id
 * and a sequence carried across continue-as-new (a retried write finds its
 * key and skips). Runs recorded before it write each entry with a
 * fire-and-forget activity from the handler instead.
 */
import { condition, log, CancellationScope } from '@temporalio/workflow';
import type { KeyedAuditEntry } from '../../activities/rollout/index';
import type { ActorPayload } from '../definitions';
import { ddl, revert } from './activities';

export interface AuditOwner {
  /** False for runs recorded before durable audits (the patch 'durable-audit-continue-as-new'). */
  readonly durable: boolean;
  readonly workflowId: string;
  /** Undefined until beginRollout has returned: entries wait for it. */
  rolloutId(): number | undefined;
}

export class RolloutAudit {
  private readonly queue: KeyedAuditEntry[] = [];
  private isFlushing = false;

  constructor(
    private readonly owner: AuditOwner,
    /** The last key's sequence number, carried to the next run of the chain. */
    public seq: number,
  ) {}

  nextKey(): string {
    return `${this.owner.rolloutId()!}:${++this.seq}`;
  }

  record(event: string, subject?: string, who?: ActorPayload, detail?: unknown): void {
    if (this.owner.durable) {
      // keyed when written (the rollout id may not be known yet); the order is the queue's; the row's time is the
      // database's, like every other audit row (`stagefill history` reads rows from the rollout's start on)
      this.queue.push({ key: '', event, subject, detail: detail ?? (who?.reason ? { reason: who.reason } : undefined), actor: who?.by });
      return;
    }
    const rolloutId = this.owner.rolloutId();
    if (rolloutId === undefined) return;
    // fire and forget: the audit row is written by an activity; history holds the order
    void ddl
      .recordRolloutEvent({
        rolloutId,
        workflowId: this.owner.workflowId,
        event,
        subject,
        detail: detail ?? (who?.reason ? { reason: who.reason } : undefined),
        actor: who?.by,
      })
      .catch((err) => log.warn('audit write failed', { event, error: String(err) }));
  }

  /** Writes the queue, oldest first, with an awaited activity that retries until it succeeds. Runs for the whole run. */
  async flush(): Promise<void> {
    for (;;) {
      await condition(() => this.owner.rolloutId() !== undefined && this.queue.length > 0);
      const batch = this.queue.slice(0, 100);
      for (const e of batch) if (!e.key) e.key = this.nextKey();
      this.isFlushing = true;
      try {
        await revert.recordRolloutEvents({ rolloutId: this.owner.rolloutId()!, workflowId: this.owner.workflowId, entries: batch });
        this.queue.splice(0, batch.length);
      } finally {
        this.isFlushing = false;
      }
    }
  }

  isDrained(): boolean {
    return this.queue.length === 0 && !this.isFlushing;
  }

  /** Nothing left to write: every queued entry is written (or this run cannot write any: recorded before durable audits, or no rollout row). */
  isSettled(): boolean {
    return !this.owner.durable || this.owner.rolloutId() === undefined || this.isDrained();
  }

  /** Waits, even in a cancelled workflow, until every queued entry is written. */
  async drain(): Promise<void> {
    if (!this.owner.durable || this.owner.rolloutId() === undefined) return;
    await CancellationScope.nonCancellable(() => condition(() => this.isDrained()));
  }
}
