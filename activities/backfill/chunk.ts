import { ApplicationFailure } from '@temporalio/activity';
import type { Queryable } from '../../db/pool';
import { inTransaction } from '../../db/pool';
import * as sql from '../../db/backfill/backfills';
import * as keys from '../../db/backfill/key-chunks';
import type { KeyedTable } from '../../db/backfill/key-sql';
import { evaluateExpect, describeExpect } from '../../core/common/expect';
import { arithmeticChunkEnd } from '../../core/backfill/chunks';
import { adaptedChunkSize } from '../../core/backfill/throttle';
import { keyNames, formatKey, formatRange } from '../../core/backfill/keys';
import { classifyPgError, chunkFailure, CHUNK_VALIDATION_ERROR, SETUP_ERROR } from '../../db/errors';
import type { LeaseInput } from './types';
import { WORKER_ID } from './types';
import type { Lane } from './lane';

/**
 * One chunk on a lane (lane.ts): its end (a fixed range on a replay, by
 * arithmetic, or the cut the last checkpoint read), the transform, the
 * chunk's checks, and the checkpoint with the partition's cursor, in one
 * transaction. The lane follows the database only once it has committed.
 */

/** The checkpoint found the cursor moved: another lease committed this chunk first. */
class LaneRaced extends Error {
  constructor(readonly lo: string) {
    super(`partition cursor moved from ${lo} under this lease`);
  }
}

export type ChunkOutcome =
  | { kind: 'done' }
  | { kind: 'raced'; lo: string }
  | { kind: 'chunk'; lo: string; hi: string; rows: number; ms: number; isLast: boolean; nextSize: number };

export async function applyChunk(lane: Lane, input: LeaseInput, size: number): Promise<ChunkOutcome> {
  if (lane.isDone) return { kind: 'done' };
  const t = lane.source;
  const n = t.cols.length;
  const lo = lane.cursor;
  const outcome = await inTransaction(lane.session.client, async (db): Promise<ChunkOutcome & { nextCut?: string | null }> => {
    const t0 = performance.now();
    let hi: string;
    if (lane.fixedChunks) {
      // a replay re-runs exactly the recorded ranges, which lie end to end
      const next = lane.fixedChunks.find(([flo]) => flo === lo);
      if (!next) return { kind: 'done' };
      hi = next[1];
    } else if (lane.isArithmetic) {
      hi = arithmeticChunkEnd(lo, lane.hi, size);
    } else {
      const cut = lane.nextCut !== undefined ? lane.nextCut : await keys.cutChunk(db, t, lo, lane.hi, size);
      hi = await endPastRun(db, t, input, lo, lane.hi, cut, size);
    }
    const isLast = hi === lane.hi;
    let rows: number;
    try {
      rows = (await keys.runRangeStatement(db, input.transform, t.cols, lo, hi)).rowCount;
    } catch (err) {
      throw classifyPgError(err) === 'fatal' ? chunkFailure(err, formatKey(lo, n), formatKey(hi, n), 'transform') : err;
    }
    for (const check of input.validate ?? []) {
      let value: unknown;
      try {
        value = (await keys.runRangeStatement(db, check.sql, t.cols, lo, hi)).value;
      } catch (err) {
        throw classifyPgError(err) === 'fatal' ? chunkFailure(err, formatKey(lo, n), formatKey(hi, n), `check "${check.name}"`) : err;
      }
      if (!evaluateExpect(Number(value), check.expect).ok) {
        throw ApplicationFailure.create({
          message: `chunk ${formatRange(lo, hi, n)} failed check "${check.name}": got ${String(value)}, expected ${describeExpect(check.expect)}`,
          type: CHUNK_VALIDATION_ERROR,
          nonRetryable: true,
          details: [{ lo, hi, check: check.name, value }],
        });
      }
    }
    const ms = performance.now() - t0;
    const nextSize =
      isLast || !input.targetChunkMs
        ? size
        : adaptedChunkSize(
            { targetChunkMs: input.targetChunkMs, minChunkSize: input.minChunkSize, maxChunkSize: input.maxChunkSize },
            size,
            ms,
          );
    const wantsCut = !isLast && !lane.fixedChunks && !lane.isArithmetic;
    const written = await sql.commitChunkCheckpoint(
      db,
      {
        backfillId: input.backfillId,
        generation: input.generation,
        partitionNo: input.partitionNo,
        lo,
        hi,
        isLast,
        rows,
        durationMs: ms,
        transformHash: input.transformHash,
        worker: WORKER_ID,
      },
      wantsCut ? { ...t, partitionHi: lane.hi, size: nextSize } : undefined,
    );
    // the cursor moved under us: roll the transform back (throwing is how inTransaction does that)
    if (!written.isWritten) throw new LaneRaced(lo);
    return { kind: 'chunk', lo, hi, rows, ms, isLast, nextSize, nextCut: wantsCut ? written.nextCut : undefined };
  }).catch((err: unknown) => {
    if (err instanceof LaneRaced) return { kind: 'raced' as const, lo };
    throw err;
  });
  if (outcome.kind === 'chunk') {
    // only now, committed: the lane's memory follows the database, never leads it
    lane.cursor = outcome.hi;
    lane.isDone = outcome.isLast;
    lane.nextCut = outcome.nextCut;
  }
  return outcome;
}

/**
 * The chunk's end from its cut. A cut at `lo` means more rows share the
 * value `lo` than `size`: with a chunk shrunk below the configured chunkSize
 * (targetChunkMs) it is cut again at chunkSize; a run longer than that is
 * refused, never run as a chunk over its size.
 */
async function endPastRun(
  db: Queryable,
  t: KeyedTable,
  input: LeaseInput,
  lo: string,
  partitionHi: string,
  cut: string | null,
  size: number,
): Promise<string> {
  try {
    return keys.chunkEnd(lo, partitionHi, cut, size);
  } catch (err) {
    if (!(err instanceof keys.KeyRunTooLong)) throw err;
  }
  if (size < input.chunkSize) {
    const again = await keys.cutChunk(db, t, lo, partitionHi, input.chunkSize);
    if (again !== lo) return again ?? partitionHi;
  }
  const most = Math.max(size, input.chunkSize);
  throw ApplicationFailure.create({
    message:
      `key: more than ${most} rows share the key value ${formatKey(lo, t.cols.length)} of ${input.table}, so no chunk of at most ${most} rows can hold them. ` +
      `Key the backfill by more columns to make it unique (e.g. key: [${keyNames(input.key).join(', ')}, id]) or raise chunkSize`,
    type: SETUP_ERROR,
    nonRetryable: true,
    details: [{ lo, size: most }],
  });
}
