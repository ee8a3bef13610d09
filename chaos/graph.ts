import { parseRolloutSpec } from '../steps/spec';
import { persist, countInto, liveWriter, noWrites, runRollout } from './drive';
import type { DriveContext, RunRecord } from './workload';
import * as sql from './sql';

/**
 * A rollout graph across two tables: accounts gets `ref = id + 1000000` (expand and a backfill) and a unique
 * constraint on it; ledger, in a branch of its own at the same time, gets `account_ref = account_id + 1000000`
 * (expand and a backfill); then a foreign key from ledger.account_ref onto accounts.ref (it needs both branches), a
 * gate over both tables, an approval the campaign answers, and the two contracts, ledger's first. Live writers
 * update both tables and insert into ledger meanwhile.
 */

/** Accounts per graph (the ledger has the campaign's rows per table). */
export const GRAPH_ACCOUNTS = 500;
export const ACCOUNT_COLUMNS = ['id', 'label'] as const;
export const LEDGER_COLUMNS = ['id', 'account_id', 'amount'] as const;

export function graphSpec(name: string, accounts: string, ledger: string, maxRowsPerSecond: number) {
  const backfill = { chunkSize: 200, throttle: { maxRowsPerSecond } };
  return parseRolloutSpec({
    kind: 'rollout',
    name,
    table: ledger,
    rollbackWindow: '1s',
    maxConcurrentSteps: 3,
    steps: [
      {
        id: 'accounts-ref',
        kind: 'addColumn',
        table: accounts,
        column: 'ref',
        type: 'bigint',
        up: 'id + 1000000',
        backfill,
        dependsOn: [],
      },
      { id: 'accounts-ref-unique', kind: 'addUnique', table: accounts, columns: ['ref'], dependsOn: ['accounts-ref'] },
      { id: 'ledger-ref', kind: 'addColumn', column: 'account_ref', type: 'bigint', up: 'account_id + 1000000', backfill, dependsOn: [] },
      {
        id: 'ledger-fk',
        kind: 'addForeignKey',
        columns: ['account_ref'],
        references: { table: accounts, columns: ['ref'] },
        dependsOn: ['accounts-ref-unique', 'ledger-ref'],
      },
      {
        id: 'refs-agree',
        kind: 'gate',
        dependsOn: ['ledger-fk'],
        checks: [
          { name: 'accounts.ref', sql: `SELECT count(*) FROM ${accounts} WHERE ref IS DISTINCT FROM id + 1000000`, expect: { eq: 0 } },
          {
            name: 'ledger.account_ref',
            sql: `SELECT count(*) FROM ${ledger} WHERE account_ref IS DISTINCT FROM account_id + 1000000`,
            expect: { eq: 0 },
          },
        ],
      },
      { id: 'ok', kind: 'approval', timeout: '2h', dependsOn: ['refs-agree'] },
      { id: 'contract-ledger', kind: 'contract', dependsOn: ['ok'] },
      { id: 'contract-accounts', kind: 'contract', table: accounts, dependsOn: ['contract-ledger'] },
    ],
  });
}

export async function driveGraph(
  { stack, conn, opts, isStopping }: DriveContext,
  rec: RunRecord,
  base: string,
  decision: 'approve' | 'rollback',
  liveSeed: number,
): Promise<void> {
  const accounts = `public.${base}_accounts`;
  rec.parent = accounts;
  rec.liveParent = noWrites();
  await persist(() => sql.createGraphTables(stack.pool, accounts, rec.table, GRAPH_ACCOUNTS, rec.rows));
  const snapshot = async (table: string, columns: readonly string[], rows: number) => ({
    catalog: await persist(() => sql.catalogOf(stack.pool, table)),
    checksum: await persist(() => sql.rowsChecksum(stack.pool, table, columns, rows)),
  });
  const ledgerBefore = await snapshot(rec.table, LEDGER_COLUMNS, rec.rows);
  rec.before = { ...ledgerBefore, tables: { [accounts]: await snapshot(accounts, ACCOUNT_COLUMNS, GRAPH_ACCOUNTS) } };
  const spec = graphSpec(rec.name, accounts, rec.table, opts.maxRowsPerSecond);
  let nextId = rec.rows;
  const writer = liveWriter(liveSeed, opts.liveWriteEveryMs, async (r) => {
    const roll = r.next();
    if (roll < 0.3) {
      const id = ++nextId;
      await countInto(rec.liveInserts, () => sql.insertLedger(stack.pool, rec.table, id, r.int(1, GRAPH_ACCOUNTS)));
    } else if (roll < 0.65) {
      await countInto(rec.live, () => sql.hitRow(stack.pool, rec.table, r.int(1, rec.rows)));
    } else {
      await countInto(rec.liveParent!, () => sql.hitRow(stack.pool, accounts, r.int(1, GRAPH_ACCOUNTS)));
    }
  });
  await runRollout(conn, spec, rec, decision, isStopping, writer);
}
