import type { Pool } from 'pg';
import { present } from '../core/common/checked';
import type { RunRecord, LiveCount } from './workload';
import { persist, TABLE_PREFIX } from './workload';
import type { Tenant } from './fleet';
import { FLEET_COLUMNS } from './fleet';
import { GRAPH_ACCOUNTS, ACCOUNT_COLUMNS, LEDGER_COLUMNS } from './graph';
import * as sql from './sql';

/**
 * The checker, over the whole history once the runs have settled: every backfilled row applied exactly once (the
 * counter n is 1 on every row), every rollout and rollout graph completed as its spec says or rolled back to the
 * catalog and data it started from (every table of it), every fleet target completed or as before with its counter
 * never past 1, live writes kept either way, each operator signal audited once, no run left open, and nothing of
 * stagefill's left on any table (the tenant databases' too).
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

export async function checkCampaign(pool: Pool, tenants: readonly Tenant[], runs: readonly RunRecord[]): Promise<CheckResult> {
  const violations: Violation[] = [];
  let rowsChecked = 0;
  const flag = (run: RunRecord | undefined, what: string) => violations.push({ run: run?.name ?? '-', what });

  for (const run of runs) {
    if (run.outcome === undefined) {
      flag(run, `stuck: ${run.workflowId || 'never started'} had not closed when the campaign stopped waiting`);
      continue;
    }
    switch (run.kind) {
      case 'rollout':
        rowsChecked += await persist(() => checkRollout(pool, run, flag));
        break;
      case 'graph':
        rowsChecked += await persist(() => checkGraph(pool, run, flag));
        break;
      case 'fleet':
        rowsChecked += await persist(() => checkFleet(tenants, run, flag));
        break;
      case 'backfill-int':
      case 'backfill-uuid':
      case 'backfill-composite':
        rowsChecked += await persist(() => checkBackfill(pool, run, flag));
        break;
    }
  }
  for (const left of await persist(() => sql.leftovers(pool, TABLE_PREFIX))) flag(undefined, `left behind: ${left}`);
  for (const t of tenants)
    for (const left of await persist(() => sql.leftovers(t.pool, TABLE_PREFIX)))
      flag(undefined, `left behind in target ${t.name}: ${left}`);
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
    if (present(catalog.triggers, 'the triggers').length) flag(run, `completed with triggers left: ${JSON.stringify(catalog.triggers)}`);
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

/** Columns of a catalog snapshot as `name type, ...`. */
const columnsOf = (catalog: Record<string, unknown[]>) =>
  (catalog.columns as { attname: string; type: string }[]).map((c) => `${c.attname} ${c.type}`).join(', ');

async function checkGraph(pool: Pool, run: RunRecord, flag: Flag): Promise<number> {
  const before = run.before!;
  const accounts = run.parent!;
  const accountsBefore = present(before.tables?.[accounts], `the snapshot of ${accounts} before`);
  const ledgerCatalog = await sql.catalogOf(pool, run.table);
  const accountsCatalog = await sql.catalogOf(pool, accounts);
  const isCompleted = run.outcome === 'completed';
  if (isCompleted) {
    if (run.decision === 'rollback' && run.signals.acked > 0) flag(run, 'completed although the campaign asked for a rollback at approval');
    if (columnsOf(accountsCatalog) !== 'hits integer, id bigint, label text, ref bigint')
      flag(run, `completed, but ${accounts} has columns ${columnsOf(accountsCatalog)} (expected ref bigint added)`);
    if (columnsOf(ledgerCatalog) !== 'account_id bigint, account_ref bigint, amount integer, hits integer, id bigint')
      flag(run, `completed, but ${run.table} has columns ${columnsOf(ledgerCatalog)} (expected account_ref bigint added)`);
    const constraints = (c: Record<string, unknown[]>) => c.constraints as { def: string; convalidated: boolean }[];
    if (!constraints(accountsCatalog).some((k) => k.def === 'UNIQUE (ref)' && k.convalidated))
      flag(run, `completed without a unique constraint on ${accounts}.ref`);
    // pg_get_constraintdef names the referenced table without its schema when the schema is on the search_path
    const references = new RegExp(`^FOREIGN KEY \\(account_ref\\) REFERENCES (public\\.)?${accounts.split('.')[1]}\\(ref\\)$`);
    if (!constraints(ledgerCatalog).some((k) => references.test(k.def) && k.convalidated))
      flag(run, `completed without a validated foreign key from account_ref onto ${accounts}(ref)`);
    if (present(accountsCatalog.triggers, 'the triggers').length || present(ledgerCatalog.triggers, 'the triggers').length)
      flag(run, 'completed with triggers left on its tables');
  } else if (run.outcome === 'rolled_back') {
    if (run.decision === 'approve' && run.signals.acked > 0 && !run.rollbackReason)
      flag(run, 'rolled back after the campaign approved it, with no reason recorded');
    for (const [table, was, is] of [
      [run.table, before.catalog, ledgerCatalog],
      [accounts, accountsBefore.catalog, accountsCatalog],
    ] as const)
      if (JSON.stringify(was) !== JSON.stringify(is))
        flag(
          run,
          `rolled back, but the catalog of ${table} differs from before: before ${JSON.stringify(was)}; after ${JSON.stringify(is)}`,
        );
  } else {
    flag(run, `graph ended ${run.outcome}, neither completed nor rolled_back`);
  }
  // the original rows' own columns are as before either way (the graph adds columns, it changes no value)
  if ((await sql.rowsChecksum(pool, run.table, LEDGER_COLUMNS, run.rows)) !== before.checksum)
    flag(run, `the original rows of ${run.table} differ from before`);
  if ((await sql.rowsChecksum(pool, accounts, ACCOUNT_COLUMNS, GRAPH_ACCOUNTS)) !== accountsBefore.checksum)
    flag(run, `the original rows of ${accounts} differ from before`);
  const c = await sql.graphCounts(pool, accounts, run.table, GRAPH_ACCOUNTS, run.rows, isCompleted);
  if (c.accountsWrong) flag(run, `completed, but ${c.accountsWrong} accounts have ref other than id + 1000000`);
  if (c.ledgerWrong) flag(run, `completed, but ${c.ledgerWrong} ledger rows have account_ref other than account_id + 1000000`);
  if (c.insertedWrong) flag(run, `${c.insertedWrong} live-inserted ledger rows have a wrong account_ref`);
  const live: [string, LiveCount, number][] = [
    ['live inserts into the ledger', run.liveInserts, c.inserted],
    ['live updates of the ledger', run.live, c.ledgerHits],
    ['live updates of the accounts', run.liveParent!, c.accountsHits],
  ];
  for (const [what, count, actual] of live)
    if (!within(count, actual)) flag(run, `${what}: ${actual} in the table, ${count.acked} acknowledged (+${count.uncertain} uncertain)`);
  const audited = await sql.auditedSignals(pool, run.workflowId);
  if (!within(run.signals, audited))
    flag(
      run,
      `${audited} operator signals audited, ${run.signals.acked} sent (+${run.signals.uncertain} uncertain): each must be audited once`,
    );
  return run.rows + c.inserted + GRAPH_ACCOUNTS;
}

/**
 * A fleet: it ended as the campaign decided (approve: completed, every target changed; rollback: rolled back after
 * the spoiled target failed); each target completed (w = v * 2 on every row, n = 1 on every row: its change ran once,
 * each chunk once) or is as before (catalog identical, its rows' own columns too, n never past 1); live writes kept.
 */
async function checkFleet(tenants: readonly Tenant[], run: RunRecord, flag: Flag): Promise<number> {
  const expected = run.decision === 'approve' ? 'completed' : 'rolled_back';
  if (run.outcome !== expected)
    flag(run, `fleet ended ${run.outcome}, not ${expected} (${run.decision} asked; ${run.rollbackReason ?? 'no error'})`);
  let rows = 0;
  for (const target of run.targets!) {
    const t = tenants.find((x) => x.name === target.name)!;
    const was = present(run.before?.tables?.[target.name], `the snapshot of ${target.name} before`);
    const on = (what: string) => flag(run, `target ${target.name} (${target.state}): ${what}`);
    if (target.attempt > 1) on(`its change ran ${target.attempt} times`);
    if (run.decision === 'approve' && target.state !== 'completed') on('not completed although the fleet was approved');
    const isCompleted = target.state === 'completed';
    const catalog = await sql.catalogOf(t.pool, run.table);
    const c = await sql.fleetCounts(t.pool, run.table, isCompleted);
    if (c.more) on(`${c.more} rows counted more than once (n > 1)`);
    if (isCompleted) {
      if (columnsOf(catalog) !== 'hits integer, id bigint, n integer, v integer, w bigint')
        on(`columns ${columnsOf(catalog)} (expected w bigint added)`);
      if (present(catalog.triggers, 'the triggers').length) on(`triggers left: ${JSON.stringify(catalog.triggers)}`);
      if (c.wWrong) on(`${c.wWrong} rows with w other than v * 2`);
      if (c.once !== c.rows) on(`rows counted other than once: ${c.never} never, ${c.more} more than once (of ${c.rows})`);
    } else if (JSON.stringify(catalog) !== JSON.stringify(was.catalog)) {
      on(`the catalog differs from before: before ${JSON.stringify(was.catalog)}; after ${JSON.stringify(catalog)}`);
    }
    if ((await sql.rowsChecksum(t.pool, run.table, FLEET_COLUMNS, run.rows)) !== was.checksum) on('its rows differ from before');
    if (!within(target.live, c.hits))
      on(`live updates: ${c.hits} in the table, ${target.live.acked} acknowledged (+${target.live.uncertain} uncertain)`);
    rows += c.rows;
  }
  return rows;
}
