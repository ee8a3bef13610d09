import { createPool } from '../../db/pool';
import { targetChangeId } from '../../core/fleet/ids';
import { readHistory, formatHistory, type RunHistory } from '../history';
import { targetsOfFile } from './targets';

/** `stagefill history` of a fleet: each target's audit of its change, from the target's own database. */
export interface FleetHistory {
  workflowId: string;
  /** Targets whose database holds an audit of this fleet's change, in name order. */
  targets: ({ target: string } & RunHistory)[];
  /** Targets of the file with no audit of it (not in the fleet, not reached yet, or skipped). */
  untouched: string[];
  /** Targets whose database could not be read. */
  unreadable: { target: string; error: string }[];
}

/** Reads every target of the targets file, a few at a time; the audit outlives Temporal's retention, as a single run's does. */
export async function readFleetHistory(fleetWorkflowId: string, targetsFile: string | undefined): Promise<FleetHistory> {
  const targets = targetsOfFile(targetsFile);
  const out: FleetHistory = { workflowId: fleetWorkflowId, targets: [], untouched: [], unreadable: [] };
  const queue = [...targets];
  const read = async () => {
    for (let t = queue.shift(); t; t = queue.shift()) {
      const pool = createPool({ url: t.url, max: 1, applicationName: 'stagefill-history' });
      try {
        const h = await readHistory(pool, targetChangeId(fleetWorkflowId, t.name));
        if (h.events.length || h.rollout || h.backfill) out.targets.push({ target: t.name, ...h });
        else out.untouched.push(t.name);
      } catch (err) {
        out.unreadable.push({ target: t.name, error: (err as Error).message });
      } finally {
        await pool.end().catch(() => {});
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, targets.length) }, read));
  const byName = (a: { target: string }, b: { target: string }) => (a.target < b.target ? -1 : 1);
  out.targets.sort(byName);
  out.unreadable.sort(byName);
  out.untouched.sort();
  return out;
}

export function formatFleetHistory(h: FleetHistory): string {
  const lines = [`fleet ${h.workflowId}: ${h.targets.length} target${h.targets.length === 1 ? '' : 's'} with an audit`];
  for (const t of h.targets) {
    lines.push(
      '',
      `== ${t.target} (${t.workflowId})`,
      ...formatHistory(t)
        .split('\n')
        .map((l) => `  ${l}`),
    );
  }
  if (h.untouched.length) lines.push('', `no audit of this fleet (not reached, skipped or not in it): ${h.untouched.join(', ')}`);
  for (const u of h.unreadable) lines.push(`cannot read ${u.target}: ${u.error}`);
  return lines.join('\n');
}
