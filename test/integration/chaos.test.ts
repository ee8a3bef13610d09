import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCampaign, defaultOptions } from '../../chaos/campaign';
import { checkCampaign } from '../../chaos/checker';
import { createCounterTable, createFleetTable, createGraphTables, catalogOf, rowsChecksum } from '../../chaos/sql';
import { GRAPH_ACCOUNTS, LEDGER_COLUMNS, ACCOUNT_COLUMNS } from '../../chaos/graph';
import { FLEET_COLUMNS } from '../../chaos/fleet';
import { RUN_KINDS, TABLE_PREFIX, classOf, type RunRecord } from '../../chaos/workload';
import { removeStateDir } from '../../chaos/stack';
import { ROOT, env, pool, useStack, afterThisTest } from './harness';
import { recordFacts } from './report';

// Needs dist/ (`npm run build`): the campaign's workers are real processes, its faults real signals on them, on
// the Temporal dev server and on PostgreSQL (a stack of the campaign's own; the run's shared one only for the
// checker's own test below).
jest.setTimeout(600_000);

useStack();

const SEED = 34;

test('the checker is not vacuous: a row applied twice, a lost live write, a run never closed and a leftover trigger are each a violation', async () => {
  const table = `public.${TABLE_PREFIX}selftest_${process.pid}`;
  await createCounterTable(pool, table, 'int', 100);
  const noop = `public.${TABLE_PREFIX}selftest_noop_${process.pid}`;
  afterThisTest(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
    await pool.query(`DROP FUNCTION IF EXISTS ${noop}()`);
  });
  await pool.query(`UPDATE ${table} SET n = CASE WHEN id = 7 THEN 2 ELSE 1 END, v = CASE WHEN id <= 3 THEN 1 ELSE 0 END`);
  await pool.query(`CREATE FUNCTION ${noop}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`);
  await pool.query(`CREATE TRIGGER stagefill_left_over BEFORE UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${noop}()`);
  const run = (over: Partial<RunRecord>): RunRecord => ({
    name: 'selftest',
    kind: 'backfill-int',
    workflowId: 'wf',
    table,
    rows: 100,
    startedAt: 0,
    endedAt: 1,
    outcome: 'completed',
    live: { acked: 5, uncertain: 1 },
    liveInserts: { acked: 0, uncertain: 0 },
    signals: { acked: 0, uncertain: 0 },
    ...over,
  });
  const { violations, rowsChecked } = await checkCampaign(
    pool,
    [],
    [run({}), run({ name: 'open', outcome: undefined, endedAt: undefined })],
  );
  const said = violations.map((v) => `${v.run}: ${v.what}`);
  expect(said).toEqual(
    expect.arrayContaining([
      'selftest: rows applied other than once: 0 never, 1 more than once (of 100)',
      'selftest: live writes: 3 in the table, 5 acknowledged (+1 uncertain)',
      'open: stuck: wf had not closed when the campaign stopped waiting',
      expect.stringMatching(/^-: left behind: trigger stagefill_left_over on chaos_selftest_/),
    ]),
  );
  expect(rowsChecked).toBe(100);
});

test('a run set up again after a fault (seed 2027: its CREATE TABLE committed, the answer lost) starts over instead of failing on the table it made', async () => {
  // the 10-minute campaign of seed 2027 lost a backfill this way: PostgreSQL SIGKILLed between the commit of its
  // CREATE TABLE and the answer; the campaign tried again, and every try failed on "already exists" (0 rows, no run)
  const table = `public.${TABLE_PREFIX}selftest_setup_${process.pid}`;
  afterThisTest(async () => {
    await pool.query(`DROP TABLE IF EXISTS ${table}`);
  });
  await createCounterTable(pool, table, 'composite', 100);
  await createCounterTable(pool, table, 'composite', 100);
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table}`);
  expect(rows[0].n).toBe(100);
});

test("the graph's and the fleet's checks are not vacuous: a catalog not given back, a lost live write, a row counted twice, a change run twice", async () => {
  const tag = `${TABLE_PREFIX}selftest_${process.pid}`;
  const accounts = `public.${tag}_accounts`;
  const ledger = `public.${tag}_ledger`;
  const fleet = `public.${tag}_fleet`;
  afterThisTest(async () => {
    for (const t of [ledger, accounts, fleet]) await pool.query(`DROP TABLE IF EXISTS ${t}`);
  });
  await createGraphTables(pool, accounts, ledger, GRAPH_ACCOUNTS, 100);
  await createFleetTable(pool, fleet, 50);
  const snap = async (table: string, columns: readonly string[], rows: number) => ({
    catalog: await catalogOf(pool, table),
    checksum: await rowsChecksum(pool, table, columns, rows),
  });
  const ledgerBefore = await snap(ledger, LEDGER_COLUMNS, 100);
  const accountsBefore = await snap(accounts, ACCOUNT_COLUMNS, GRAPH_ACCOUNTS);
  const fleetBefore = await snap(fleet, FLEET_COLUMNS, 50);
  // a "rollback" that left a column behind, a live update nobody acknowledged; a target whose row was counted twice
  await pool.query(`ALTER TABLE ${ledger} ADD COLUMN junk int`);
  await pool.query(`UPDATE ${accounts} SET hits = hits + 1 WHERE id = 3`);
  await pool.query(`UPDATE ${fleet} SET n = CASE WHEN id = 9 THEN 2 ELSE 1 END`);
  const none = () => ({ acked: 0, uncertain: 0 });
  const base = { workflowId: 'wf', rows: 0, startedAt: 0, endedAt: 1, live: none(), liveInserts: none(), signals: none() };
  const graph: RunRecord = {
    ...base,
    name: 'graph',
    kind: 'graph',
    table: ledger,
    parent: accounts,
    rows: 100,
    outcome: 'rolled_back',
    decision: 'rollback',
    liveParent: none(),
    before: { ...ledgerBefore, tables: { [accounts]: accountsBefore } },
  };
  const fleetRun: RunRecord = {
    ...base,
    name: 'fleet',
    kind: 'fleet',
    table: fleet,
    rows: 50,
    outcome: 'completed',
    decision: 'approve',
    targets: [{ name: 'x', state: 'rolled_back', attempt: 2, live: none() }],
    before: { catalog: {}, checksum: '', tables: { x: fleetBefore } },
  };
  const { violations } = await checkCampaign(pool, [{ name: 'x', pool }], [graph, fleetRun]);
  const said = violations.map((v) => `${v.run}: ${v.what}`);
  expect(said).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^graph: rolled back, but the catalog of public\.chaos_selftest_\d+_ledger differs from before/),
      'graph: live updates of the accounts: 1 in the table, 0 acknowledged (+0 uncertain)',
      'fleet: target x (rolled_back): its change ran 2 times',
      'fleet: target x (rolled_back): not completed although the fleet was approved',
      'fleet: target x (rolled_back): 1 rows counted more than once (n > 1)',
    ]),
  );
  expect(said.filter((v) => v.startsWith('graph: '))).toHaveLength(2);
});

test(`a short campaign (seed ${SEED}): backfills, rollouts and a rollout graph under every kind of fault, a worker's clock skewed, 0 violations`, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-chaos-test-'));
  const log = (m: string) => process.stderr.write(`[chaos] ${m}\n`);
  const report = await runCampaign({
    ...defaultOptions(ROOT, dir, 2, SEED, log),
    bundlePath: env().bundle,
    // no fleet here (tenant databases and a fleet's waves take longer than this campaign lasts): npm run chaos has one
    inFlight: { backfill: 3, rollout: 2, graph: 1, fleet: 0 },
    workload: { rowsPerTable: 3000, maxRowsPerSecond: 800, liveWriteEveryMs: 200 },
    faults: { gapMs: [3000, 8000], downMs: [1000, 5000] },
    settleMs: 300_000,
  });
  if (report.violations.length === 0) removeStateDir(dir);
  else log(`kept ${dir} (data and logs of the failed campaign)`);

  expect(report.violations).toEqual([]);
  // the faults really happened: every kind met at least once in the first faults of the schedule
  expect(report.faults.length).toBeGreaterThanOrEqual(6);
  expect(new Set(report.faults.map((f) => f.kind)).size).toBeGreaterThanOrEqual(6);
  // and runs really ran: every kind in the mix, all closed, rollouts both ways
  for (const kind of RUN_KINDS.filter((k) => classOf(k) !== 'fleet'))
    expect(report.runs.filter((r) => r.kind === kind).length).toBeGreaterThan(0);
  expect(report.clockSkewMs).not.toBe(0);
  expect(report.runs.filter((r) => r.outcome === undefined)).toEqual([]);
  expect(report.runs.some((r) => r.kind === 'rollout' && r.outcome === 'completed')).toBe(true);
  expect(report.runs.some((r) => r.kind === 'rollout' && r.outcome === 'rolled_back')).toBe(true);
  expect(report.runs.reduce((n, r) => n + r.live.acked, 0)).toBeGreaterThan(0);
  expect(report.rowsChecked).toBeGreaterThanOrEqual(report.runs.length * 3000);
  recordFacts(`fault campaign, seed ${SEED}`, {
    faults: report.faults.length,
    faultKinds: new Set(report.faults.map((f) => f.kind)).size,
    runs: report.runs.length,
    rowsChecked: report.rowsChecked,
    violations: 0,
  });
});
