import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { Session } from '../../db/pool';
import { openSession } from '../../db/pool';
import * as sql from '../../db/backfill/backfills';
import type { KeyedTable } from '../../db/backfill/key-sql';
import { isCutByArithmetic, leavesChanged } from '../../core/backfill/chunks';
import type { KeyColumn } from '../../core/backfill/keys';
import { decodeKeyType, keyNames } from '../../core/backfill/keys';
import { THROTTLE_DEFAULTS } from '../../core/common/throttle-limits';
import { SETUP_ERROR } from '../../db/errors';
import type { LeaseInput } from './types';

/**
 * A lane: a lease's hold on its partition (lease.ts), opened here. One
 * connection, its timeouts set, and what the lane keeps between chunks
 * (chunk.ts moves it on after each commit).
 */

/** A lease's hold on its partition: the connection, and the cursor it keeps between chunks. */
export interface Lane {
  session: Session;
  /** Where the lane reads its cuts: the partition's leaf of a partitioned table, else the table. */
  source: KeyedTable;
  cursor: string;
  hi: string;
  isDone: boolean;
  fixedChunks: [string, string][] | null;
  isArithmetic: boolean;
  /** The next chunk's cut, from the last checkpoint statement; undefined: not known yet. */
  nextCut: string | null | undefined;
}

function setupFailure(message: string): ApplicationFailure {
  return ApplicationFailure.create({ message, type: SETUP_ERROR, nonRetryable: true });
}

function keyColumnsOf(input: Pick<LeaseInput, 'key' | 'keyType'>): KeyColumn[] {
  return decodeKeyType(input.keyType, keyNames(input.key));
}

/**
 * A connection for the lane, its timeouts set, and where the partition
 * stands. A pool busy with other lanes is waited out (the beat goes on),
 * not failed; undefined when the lease is cancelled meanwhile.
 */
export async function enterLane(pool: Pool, input: LeaseInput, cancelled: AbortSignal): Promise<Lane | undefined> {
  let session: Session | undefined;
  while (!session) {
    if (cancelled.aborted) return undefined;
    session = await openSession(pool, sql.closeLane).catch((err: Error) => {
      if (/timeout exceeded when trying to connect/i.test(err.message)) return undefined;
      throw err;
    });
  }
  try {
    const p = await sql.openLane(session.client, {
      ...input,
      isCompositeKey: keyColumnsOf(input).length > 1,
      flushAfterKb: input.flushAfterKb ?? THROTTLE_DEFAULTS.flushAfterKb,
    });
    const changed = leavesChanged(p.planned_leaves, p.leaves_now);
    if (changed)
      throw setupFailure(
        `table: partitions of ${input.table} changed during the backfill (${changed}); its key ranges no longer match its partitions. Start it again with --restart to plan over the partitions as they are now`,
      );
    const isArithmetic = isCutByArithmetic({
      keyType: input.keyType,
      isKeyUnique: input.isKeyUnique ?? false,
      lo: p.lo,
      hi: p.hi,
      rowsPlanned: Number(p.rows_planned),
    });
    const source = { table: p.leaf ?? input.table, cols: keyColumnsOf(input) };
    return {
      session,
      source,
      cursor: p.cursor,
      hi: p.hi,
      isDone: p.is_done,
      fixedChunks: p.fixed_chunks,
      isArithmetic,
      nextCut: undefined,
    };
  } catch (err) {
    await session.close();
    throw err;
  }
}
