import type { Queryable } from '../../db/pool';
import * as keys from '../../db/backfill/keys';
import type { PartitionBound } from '../../db/backfill/key-partitions';
import { partitionBounds, estimatedRows } from '../../db/backfill/key-partitions';
import type { KeyedTable } from '../../db/backfill/key-sql';
import type { KeyColumn } from '../../core/backfill/keys';
import { keyNames, keyLabel, encodeKeyType, formatKey, parseKeyInput } from '../../core/backfill/keys';
import { isCutByArithmetic, evenKeyPartitions, partsPerLeaf, inKeyOrder } from '../../core/backfill/chunks';
import { itemAt } from '../../core/common/checked';

/**
 * The one builder of a backfill's partition plan: which key, which range,
 * which key partitions (on a partitioned table, inside which leaf). The
 * prepare activity writes it as a generation; `stagefill plan` prints it; so
 * the plan shows exactly the partitions a run will use.
 */

export interface ResolvedKey {
  cols: KeyColumn[];
  /** The key's types as stored and handed to leases (core/backfill/keys.ts encodeKeyType). */
  keyType: string;
  isUnique: boolean;
  isPartitioned: boolean;
}

/**
 * The key of `table` named by the spec, or a KeyError naming the field and
 * the fix: no such table or column, a type with no btree order, no index to
 * walk.
 */
export async function resolveKey(db: Queryable, table: string, key: string | readonly string[]): Promise<ResolvedKey> {
  const names = keyNames(key);
  const info = await keys.describeKey(db, table, names);
  if (!info.tableExists) throw new keys.KeyError('table', `${table} does not exist; create it or fix the spec's table`);
  const cols: KeyColumn[] = [];
  for (const c of info.columns) {
    if (!c.type)
      throw new keys.KeyError('key', `column "${c.name}" does not exist on ${table}; name a column (or a list of columns) of the table`);
    if (!c.hasBtree) {
      throw new keys.KeyError(
        'key',
        `column "${c.name}" of ${table} is ${c.type}, which has no default btree operator class: its values have no order to cut chunks from; ` +
          'key by a column of an ordered type (integer, numeric, uuid, text, date/time, ...)',
      );
    }
    cols.push({ name: c.name, type: c.type, collation: c.collation });
  }
  if (!info.hasIndex) {
    throw new keys.KeyError(
      'key',
      `${table} has no btree index that starts with ${keyLabel(names)}; every chunk would scan the table. ` +
        `Create one (CREATE INDEX CONCURRENTLY ON ${table} (${names.join(', ')})) or choose an indexed key`, // lint-layers: ok
    );
  }
  return { cols, keyType: encodeKeyType(cols), isUnique: info.isUnique, isPartitioned: info.isPartitioned };
}

export interface PartitionPlan extends ResolvedKey {
  /** [from, to) over every partition; null when there is no row to backfill. */
  range: { from: string; to: string } | null;
  partitions: PartitionBound[];
  /** A partitioned table's leaves (every one, empty ones too); null for a plain table. */
  leaves: string[] | null;
}

export interface PartitionPlanInput {
  table: string;
  key: string | readonly string[];
  range?: { from?: string; to?: string };
  parallelism: number;
}

export async function planPartitions(db: Queryable, input: PartitionPlanInput): Promise<PartitionPlan> {
  const key = await resolveKey(db, input.table, input.key);
  const { cols } = key;
  const t: KeyedTable = { table: input.table, cols };
  const from = input.range?.from !== undefined ? await normalizeInput(db, cols, input.range.from, 'range.from') : undefined;
  const to = input.range?.to !== undefined ? await normalizeInput(db, cols, input.range.to, 'range.to') : undefined;
  const parts = Math.max(1, input.parallelism * 4);
  const leaves = key.isPartitioned ? await keys.leafPartitions(db, input.table) : null;

  if (!leaves) {
    const ends = await keys.keyEnds(db, input.table, cols, { from, to });
    if (!ends) return { ...key, range: null, partitions: [], leaves: null };
    const range = { from: from ?? ends.first, to: to ?? (await keys.afterKey(db, cols, ends.last)) };
    return {
      ...key,
      range,
      partitions: await cutPartitions(db, t, key, input.table, range, parts, !from && !to ? ends : undefined),
      leaves: null,
    };
  }

  // A partitioned table: each leaf's keys are cut on their own, so no chunk spans two leaves. That needs
  // the leaves' key ranges apart (partitioned by the key's leading column); overlapping ones are refused.
  const spans: { leaf: string; lo: string; hi: string; last: string; estimate: number }[] = [];
  for (const leaf of leaves) {
    const ends = await keys.keyEnds(db, leaf, cols, { from, to });
    if (!ends) continue;
    if (
      await keys.rowsBetween(
        db,
        cols,
        leaves.filter((l) => l !== leaf),
        ends.first,
        ends.last,
      )
    ) {
      throw new keys.KeyError(
        'key',
        `rows of other partitions of ${input.table} lie between the keys ${formatKey(ends.first, cols.length)} and ${formatKey(ends.last, cols.length)} of ${leaf}: ` +
          `the table is not partitioned by the key's leading column, so a key range would span partitions. Key the backfill by the partition key, or backfill each partition as its own table`,
      );
    }
    const hi = (await keys.keyAbove(db, t, ends.last, to)) ?? to ?? (await keys.afterKey(db, cols, ends.last));
    spans.push({ leaf, lo: ends.first, hi, last: ends.last, estimate: await estimatedRows(db, leaf) });
  }
  if (!spans.length) return { ...key, range: null, partitions: [], leaves };
  const ordered = inKeyOrder(spans);
  const shares = partsPerLeaf(
    parts,
    ordered.map((s) => s.estimate),
  );
  const partitions: PartitionBound[] = [];
  for (const [i, s] of ordered.entries()) {
    const cut = await cutPartitions(
      db,
      { table: s.leaf, cols },
      key,
      s.leaf,
      { from: s.lo, to: s.hi },
      itemAt(shares, i, 'partitions of leaf'),
      {
        first: s.lo,
        last: s.last,
      },
    );
    partitions.push(...cut.map((p) => ({ ...p, leaf: s.leaf })));
  }
  const range = { from: itemAt(ordered, 0, 'leaf').lo, to: itemAt(ordered, ordered.length - 1, 'leaf').hi };
  return { ...key, range, partitions, leaves };
}

/**
 * Key partitions of [from, to) of `source`: of equal key span on a dense
 * unique integer key (no look at the data), else cut from the data.
 * `ends` (the source's whole first and last key) saves reading them again.
 */
async function cutPartitions(
  db: Queryable,
  t: KeyedTable,
  key: ResolvedKey,
  source: string,
  range: { from: string; to: string },
  parts: number,
  ends?: { first: string; last: string },
): Promise<PartitionBound[]> {
  if (key.isUnique && t.cols.length === 1 && ['smallint', 'integer', 'bigint'].includes(key.keyType)) {
    // density over the whole source: the planner's row estimate over its key span
    const whole = ends ?? (await keys.keyEnds(db, source, t.cols));
    if (whole) {
      const hi = (BigInt(whole.last) + 1n).toString();
      const shape = { keyType: key.keyType, isKeyUnique: true, lo: whole.first, hi, rowsPlanned: await estimatedRows(db, source) };
      if (isCutByArithmetic(shape))
        return evenKeyPartitions(range.from, range.to, parts, shape.rowsPlanned / Number(BigInt(hi) - BigInt(whole.first)));
    }
  }
  return partitionBounds(db, source, t.cols, range.from, range.to, parts);
}

/** A key value someone typed (a spec's range, `replay --from`): a tuple for a composite key, cast by the database to the key's types. */
export async function normalizeInput(db: Queryable, cols: readonly KeyColumn[], input: string, field: string): Promise<string> {
  let parts: string[];
  try {
    parts = parseKeyInput(input, cols.length);
  } catch (err) {
    throw new keys.KeyError(field, (err as Error).message);
  }
  return keys.normalizeKey(db, cols, parts, field);
}
