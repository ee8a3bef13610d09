import type { Pool } from 'pg';
import type { RunRecord, LiveCount } from './workload';
import { persist, TABLE_PREFIX } from './workload';
import * as sql from './sql';

/**
 * The checker, over the whole history once the runs have settled: every backfilled row applied exactly once (the
 * counter n is 1 on every row), every rollout completed as its spec says or rolled back to the catalog and data it
 * started from, live writes kept either way, each operator signal audited once, no run left open, and nothing of
 * stagefill's left on any table.
 */

export interface Violation {
  /** The run's name, or `-` for what belongs to no run. */
  run: string;
  what: string;
}

export interface CheckResult {
  violations: Violation[];
  rowsChecked: number;
}

export async function checkCampaign(pool: Pool, runs: readonly RunRecord[]): Promise<CheckResult> {
  const violations: Violation[] = [];
  let rowsChecked = 0;
  const flag = (run: RunRecord | undefined, what: string) => violations.push({ run: run?.name ?? '-', what });

  for (const run of runs) {
    if (run.outcome === undefined) {
      flag(run, `stuck: ${run.workflowId || 'never started'} had not closed when the campaign stopped waiting`);
      continue;
    }
    if (run.kind === 'rollout') rowsChecked += await persist(() => checkRollout(pool, run, flag));
    else rowsChecked += await persist(() => checkBackfill(pool, run, flag));
  }
  for (const left of await persist(() => sql.leftovers(pool, TABLE_PREFIX))) flag(undefined, `left behind: ${left}`);
  return { violations, rowsChecked };
}

type Flag = (run: RunRecord, what: string) => void;

function within(count: LiveCount, actual: number): boolean {
  return actual >= count.acked && actual <= count.acked + count.uncertain;
}

async function checkBackfill(pool: Pool, run: RunRecord, flag: Flag): Promise<number> {
  if (run.outcome !== 'completed') flag(run, `backfill ended ${run.outcome}, not completed`);
  const c = await sql.counterCounts(pool, run.table);
  if (c.rows !== run.rows) flag(run, `${c.rows} rows in ${run.table}, ${run.rows} made`);
  if (run.outcome === 'completed' && c.once !== c.rows)
    flag(run, `rows applied other than once: ${c.never} never, ${c.more} more than once (of ${c.rows})`);
  if (!within(run.live, c.liveSum))
    flag(run, `live writes: ${c.liveSum} in the table, ${run.live.acked} acknowledged (+${run.live.uncertain} uncertain)`);
  return c.rows;
}

async function checkRollout(pool: Pool, run: RunRecord, flag: Flag): Promise<number> {
  const before = run.before!;
  const checksum = await sql.orderChecksum(pool, run.table, run.rows, 1);
  const catalog = await sql.catalogOf(pool, run.table);
  if (run.outcome === 'completed') {
    if (run.decision === 'rollback' && run.signals.acked > 0) flag(run, 'completed although the campaign asked for a rollback at approval');
    const columns = (catalog.columns as { attname: string; type: string }[]).map((c) => `${c.attname} ${c.type}`).join(', ');
    if (columns !== 'customer_id integer, hits integer, id bigint, note text, qty bigint')
      flag(run, `completed, but its columns are ${columns} (expected qty bigint and no other change)`);
    if (!(catalog.indexes as { def: string; indisvalid: boolean }[]).some((i) => /\(customer_id\)$/.test(i.def) && i.indisvalid))
      flag(run, 'completed without a valid index on customer_id');
    if (
      !(catalog.constraints as { def: string; convalidated: boolean }[]).some(
        (k) => k.def.startsWith('FOREIGN KEY (customer_id) REFERENCES') && k.convalidated,
      )
    )
      flag(run, 'completed without a validated foreign key on customer_id');
    if (catalog.triggers.length) flag(run, `completed with triggers left: ${JSON.stringify(catalog.triggers)}`);
    if (checksum !== before.scaledChecksum)
      flag(run, 'completed, but the original rows are not qty * 10 with every other column as before');
  } else if (run.outcome === 'rolled_back') {
    if (run.decision === 'approve' && run.signals.acked > 0 && !run.rollbackReason)
      flag(run, 'rolled back after the campaign approved it, with no reason recorded');
    const was = JSON.stringify(before.catalog);
    const is = JSON.stringify(catalog);
    if (was !== is) flag(run, `rolled back, but the catalog differs from before: before ${was}; after ${is}`);
    if (checksum !== before.checksum) flag(run, 'rolled back, but the original rows differ from before');
  } else {
    flag(run, `rollout ended ${run.outcome}, neither completed nor rolled_back`);
  }
  const live = await sql.liveOrders(pool, run.table, run.rows);
  if (!within(run.liveInserts, live.inserted))
    flag(
      run,
      `live inserts: ${live.inserted} in the table, ${run.liveInserts.acked} acknowledged (+${run.liveInserts.uncertain} uncertain)`,
    );
  if (live.insertedWrong) flag(run, `${live.insertedWrong} live-inserted rows changed by the rollout (qty not 0)`);
  if (live.qtyNull) flag(run, `${live.qtyNull} rows with qty NULL`);
  if (!within(run.live, live.hits))
    flag(run, `live updates: ${live.hits} in the table, ${run.live.acked} acknowledged (+${run.live.uncertain} uncertain)`);
  const audited = await sql.auditedSignals(pool, run.workflowId);
  if (!within(run.signals, audited))
    flag(
      run,
      `${audited} operator signals audited, ${run.signals.acked} sent (+${run.signals.uncertain} uncertain): each must be audited once`,
    );
  return run.rows + live.inserted;
}
