/**
 * Replay lag of streaming replicas, robustly, from what the primary sees.
 *
 * `pg_stat_replication.replay_lag` goes NULL when the primary is idle and
 * stops moving while replay is paused (no new WAL position is replayed, so no
 * new sample is taken): it cannot be trusted alone. The tracker also samples
 * the primary's `pg_current_wal_lsn()` over time; a replica whose
 * `replay_lsn` is behind has not replayed WAL written at the first sample
 * past that position, so its lag is at least the time since then. The lag
 * reported is the larger of the two; a replica caught up to the current
 * position has none. Pure: the probe feeds it rows and times.
 */
import type { ReplicaLag } from './throttle-control';
import { itemAt } from '../common/checked';

export interface ReplicaRow {
  /** application_name@client_addr: stable across reconnects of one replica. */
  name: string;
  state: string;
  replayLsn: string | null;
  /** replay_lag in ms, or null. */
  replayLagMs: number | null;
}

/** An LSN "16/B374D848" as a number of bytes (exact below 2^53: 8 PB of WAL). */
export function parseLsn(lsn: string): number {
  const m = /^([0-9A-F]+)\/([0-9A-F]+)$/i.exec(lsn.trim());
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(lsn)}`);
  const [, high = '', low = ''] = m; // both groups always match
  return parseInt(high, 16) * 2 ** 32 + parseInt(low, 16);
}

export class ReplicaLagTracker {
  /** (time, primary LSN) whenever the LSN moved; the oldest kept as the floor. */
  private samples: { at: number; lsn: number }[] = [];
  private known = new Set<string>();

  constructor(
    knownReplicas: readonly string[] = [],
    private readonly keepMs = 6 * 3_600_000,
  ) {
    for (const r of knownReplicas) this.known.add(r);
  }

  /** Replicas seen so far (to remember across probes). */
  replicasSeen(): string[] {
    return [...this.known].sort();
  }

  /** Forget replicas no longer present (an operator removed one for good). */
  forgetMissing(present: readonly string[]): void {
    this.known = new Set(present);
  }

  observe(at: number, currentLsn: string, rows: readonly ReplicaRow[]): ReplicaLag[] {
    const cur = parseLsn(currentLsn);
    const last = this.samples[this.samples.length - 1];
    if (!last || last.lsn !== cur) this.samples.push({ at, lsn: cur });
    while (this.samples.length > 2 && (at - itemAt(this.samples, 1, 'LSN sample').at > this.keepMs || this.samples.length > 20_000))
      this.samples.shift();
    const out: ReplicaLag[] = [];
    const present = new Set<string>();
    for (const r of rows) {
      present.add(r.name);
      this.known.add(r.name);
      out.push({ name: r.name, state: r.state === 'streaming' ? 'streaming' : r.state, lagMs: Math.round(this.lagOf(at, cur, r)) });
    }
    for (const name of this.known) if (!present.has(name)) out.push({ name, state: 'missing', lagMs: null });
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  private lagOf(at: number, cur: number, r: ReplicaRow): number {
    const reported = r.replayLagMs ?? 0;
    if (r.replayLsn === null) return Math.max(reported, at - (this.samples[0]?.at ?? at));
    const replayed = parseLsn(r.replayLsn);
    if (replayed >= cur) return 0; // caught up: any replay_lag shown is stale
    // the first time the primary was seen past what the replica replayed
    const firstPast = this.samples.find((s) => s.lsn > replayed);
    const since = firstPast ? at - firstPast.at : 0;
    return Math.max(reported, since);
  }
}
