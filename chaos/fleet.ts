import type { Pool } from 'pg';
import { itemAt, present } from '../core/common/checked';
import { startFleet } from '../client/fleet/start';
import { parseFleetSpec } from '../steps/fleet-spec';
import type { FleetProgress } from '../core/fleet/progress';
import { progressQuery, approveSignal, rollbackSignal } from '../workflows/definitions';
import { persist, startOnce, untilClosed, outcomeOf, countInto, liveWriter, noWrites } from './drive';
import type { DriveContext, RunRecord } from './workload';
import * as sql from './sql';

/**
 * A fleet in the campaign: one rollout over the campaign's tenant databases (made by the stack, served by every
 * worker through its targets file), in two waves: a canary (the fleet waits for the campaign's approve after it),
 * then the rest, two at a time. The change adds w = v * 2 with its backfill, runs a backfill step n = n + 1 (a
 * counter per row, so a target that ran its change twice, or a chunk applied twice, shows as n = 2), a gate that no
 * v is negative, and contract. When the seed says roll back, one target of the second wave gets a row its gate
 * refuses: that target fails and rolls itself back, the wave halts, and the campaign rolls the fleet back.
 */

export interface Tenant {
  /** The target's name in the workers' targets file. */
  name: string;
  /** The campaign's own connection to it (direct, application_name stagefill-chaos). */
  pool: Pool;
}

export const FLEET_COLUMNS = ['id', 'v'] as const;

export function fleetSpec(name: string, table: string, tenants: readonly Tenant[], maxRowsPerSecond: number) {
  const backfill = { chunkSize: 100, throttle: { maxRowsPerSecond } };
  return parseFleetSpec({
    kind: 'fleet',
    name,
    change: {
      kind: 'rollout',
      name,
      table,
      rollbackWindow: '1s',
      steps: [
        { id: 'w', kind: 'addColumn', column: 'w', type: 'bigint', up: 'v * 2', backfill },
        {
          id: 'count',
          kind: 'backfill',
          transform: `UPDATE ${table} SET n = n + 1 WHERE id >= :lo AND id < :hi`,
          chunkSize: 100,
          throttle: { maxRowsPerSecond },
        },
        {
          id: 'gate',
          kind: 'gate',
          checks: [{ name: 'no negative v', sql: `SELECT count(*) FROM ${table} WHERE v < 0`, expect: { eq: 0 } }],
        },
        { id: 'contract', kind: 'contract' },
      ],
    },
    waves: [
      { name: 'canary', names: [itemAt(tenants, 0, 'tenant').name], approval: true },
      { name: 'rest', share: 'rest', parallelism: 2 },
    ],
  });
}

export async function driveFleet(
  { stack, conn, opts, isStopping }: DriveContext,
  rec: RunRecord,
  decision: 'approve' | 'rollback',
  liveSeed: number,
): Promise<void> {
  const tenants = stack.tenants;
  if (tenants.length < 3) throw new Error(`a fleet needs the stack's tenant databases (3 or more), it has ${tenants.length}`);
  rec.rows = Math.floor(rec.rows / 2);
  rec.targets = tenants.map((t) => ({ name: t.name, state: 'pending', attempt: 0, live: noWrites() }));
  rec.before = { catalog: {}, checksum: '', tables: {} };
  for (const t of tenants) {
    await persist(() => sql.createFleetTable(t.pool, rec.table, rec.rows));
    // the second wave's first target: its gate fails, so the fleet halts and the campaign rolls it back
    if (decision === 'rollback' && t === tenants[1]) await persist(() => sql.spoilFleetRow(t.pool, rec.table));
    rec.before.tables![t.name] = {
      catalog: await persist(() => sql.catalogOf(t.pool, rec.table)),
      checksum: await persist(() => sql.rowsChecksum(t.pool, rec.table, FLEET_COLUMNS, rec.rows)),
    };
  }
  const spec = fleetSpec(rec.name, rec.table, tenants, opts.maxRowsPerSecond);
  const writer = liveWriter(liveSeed, opts.liveWriteEveryMs, async (r) => {
    const i = r.int(0, tenants.length - 1);
    await countInto(itemAt(present(rec.targets, 'the targets'), i, 'target').live, () =>
      sql.hitRow(itemAt(tenants, i, 'tenant').pool, rec.table, r.int(1, rec.rows)),
    );
  });
  let isApproved = false;
  let isRolledBack = false;
  try {
    rec.workflowId = await startOnce(() => startFleet(conn, spec, { actor: 'chaos' }));
    const handle = conn.client.workflow.getHandle(rec.workflowId);
    const answer = async () => {
      const p = (await handle.query(progressQuery)) as FleetProgress;
      if (p.state === 'waiting_approval' && !isApproved) {
        await countInto(rec.signals, () => handle.signal(approveSignal, { by: 'chaos' }));
        isApproved = rec.signals.acked > 0;
      } else if (p.state === 'halted' && !isRolledBack) {
        // a halted fleet waits for retry or rollback: the campaign rolls it back (a halt it did not cause shows in
        // the checker as a failed target under an approved fleet)
        rec.rollbackReason = p.lastError;
        await countInto(rec.signals, () => handle.signal(rollbackSignal, { by: 'chaos', reason: 'the fleet halted' }));
        isRolledBack = true;
      }
    };
    if (await untilClosed(handle, isStopping, answer)) {
      rec.outcome = await persist(() => outcomeOf(handle, {}));
      const p = (await persist(() => handle.query(progressQuery))) as FleetProgress;
      for (const x of rec.targets) {
        const t = p.targets.find((y) => y.name === x.name);
        x.state = t?.state ?? 'missing from the fleet';
        x.attempt = t?.attempt ?? 0;
      }
    }
  } finally {
    await writer.stop();
  }
}
