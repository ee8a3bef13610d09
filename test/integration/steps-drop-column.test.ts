import { unique, waitFor, sleep, pool } from './harness';
import {
  runThroughApproval,
  approvalThenContract,
  snapshot,
  columnNames,
  viewOf,
  useStepsStack,
  startOnFileWorker,
  expectRollbackLeavesAsBefore,
} from './steps-harness';
import { makeOrders, legacyChecksum, progressOf, outcome } from './rollout-harness';
import { recordFacts } from './report';

/**
 * dropColumn end to end on the real server and database: hidden from the new version, filled by down, dropped at
 * contract; a second run rolled back at an approval step leaves the catalog as before; refused where contract could not drop.
 */

useStepsStack();

describe('dropColumn', () => {
  const steps = [{ kind: 'dropColumn', column: 'status', down: "'via v2'" }, { kind: 'expose', version: 2 }, ...approvalThenContract];

  test('hidden from v2 at expose, inserts through v2 get down, dropped at contract; a second run rolled back leaves the catalog as before', async () => {
    const table = await makeOrders(pool, unique('orders'), 100);
    const sum = await legacyChecksum(pool, table);
    const first = await runThroughApproval({ table, steps }, 'forward', async () => {
      expect(await columnNames(viewOf(table, 2))).not.toContain('status');
      expect(await columnNames(viewOf(table, 1))).toContain('status');
      // an insert through the new version: status is NOT NULL without a default; down fills it
      await pool.query(`INSERT INTO ${viewOf(table, 2)} (id, customer_id, amount, qty, created_at) VALUES (5000, 1, 2.50, 1, now())`);
      expect((await pool.query(`SELECT status FROM ${table} WHERE id = 5000`)).rows[0].status).toBe('via v2');
      // a legacy writer's own value is kept
      await pool.query(
        `INSERT INTO ${viewOf(table, 1)} (id, customer_id, amount, qty, status, created_at) VALUES (5001, 1, 2.50, 1, 'paid', now())`,
      );
      expect((await pool.query(`SELECT status FROM ${table} WHERE id = 5001`)).rows[0].status).toBe('paid');
      expect(await legacyChecksum(pool, table)).not.toBe(sum);
    });
    expect(first.out.state).toBe('completed');
    const cat = (await snapshot(table)) as { columns: { attname: string }[]; triggers: unknown[] };
    expect(cat.columns.map((c) => c.attname)).not.toContain('status');
    expect(cat.triggers).toEqual([]);

    await expectRollbackLeavesAsBefore(steps, 100);
  });

  test('without down, a NOT NULL column without a default is refused at apply, naming down', async () => {
    const table = await makeOrders(pool, unique('orders'), 10);
    const before = await snapshot(table);
    const { handle } = await startOnFileWorker({
      table,
      steps: [
        { kind: 'dropColumn', column: 'status' },
        { kind: 'expose', version: 2 },
      ],
    });
    const out = await outcome(handle);
    expect(out.state).toBe('rolled_back');
    expect(out.failure).toMatch(/down: status is NOT NULL without a default.*give down: an expression/);
    expect(await snapshot(table)).toEqual(before);
  });

  test('refused at apply while a view of someone else reads the column (contract could not drop it)', async () => {
    const table = await makeOrders(pool, unique('orders'), 5);
    await pool.query(`CREATE VIEW ${table}_statuses AS SELECT id, status FROM ${table}`);
    await pool.query(`CREATE VIEW ${table}_amounts AS SELECT id, amount FROM ${table}`); // another column: no obstacle
    const { handle } = await startOnFileWorker({
      table,
      steps: [
        { kind: 'dropColumn', column: 'status', down: "'x'" },
        { kind: 'expose', version: 2 },
      ],
    });
    const out = await outcome(handle);
    expect(out.state).toBe('rolled_back');
    expect(out.failure).toMatch(/column: status cannot be dropped at contract while view public\.\w+_statuses depends on it/);
    expect(out.failure).not.toMatch(/_amounts/);
  });

  test('its DDL waits at most lockTimeoutMs behind a long transaction, so writers go on, and applies once it ends', async () => {
    const table = await makeOrders(pool, unique('orders'), 10);
    const holder = await pool.connect();
    const writerConn = await pool.connect();
    let writes = 0;
    let writing = true;
    let longestWaitMs = 0;
    try {
      await holder.query('BEGIN');
      await holder.query(`UPDATE ${table} SET qty = qty WHERE id = 1`); // ROW EXCLUSIVE, held open
      const { handle } = await startOnFileWorker({
        table,
        lockTimeoutMs: 200,
        steps: [{ kind: 'dropColumn', column: 'status', down: "'x'" }],
      });
      await waitFor('the step to try its lock', async () => (await progressOf(handle)).steps[0]!.state === 'running');
      // a writer meanwhile: the trigger's SHARE ROW EXCLUSIVE request would queue it behind stagefill without lock_timeout
      const writer = (async () => {
        for (let id = 10_000; writing; id++) {
          const t0 = Date.now();
          await writerConn.query(`INSERT INTO ${table} VALUES ($1, 1, 1, 1, 'new', now())`, [id]);
          longestWaitMs = Math.max(longestWaitMs, Date.now() - t0);
          writes++;
          await sleep(20);
        }
      })();
      await sleep(4000);
      const writesWhileHeld = writes;
      const triggersWhileHeld = (
        await pool.query(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal`, [table])
      ).rows[0].n;
      await holder.query('COMMIT');
      const out = await outcome(handle);
      writing = false;
      await writer;
      expect(triggersWhileHeld).toBe(0); // it did not get its lock while the transaction was open
      expect(writesWhileHeld).toBeGreaterThan(0); // and writers were not stuck behind its queued lock
      expect(out.state).toBe('completed');
      expect(
        (await pool.query(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal`, [table])).rows[0]
          .n,
      ).toBe(1);
      recordFacts('dropColumn DDL behind a long transaction (lockTimeoutMs 200)', { writesWhileHeld, writerLongestWaitMs: longestWaitMs });
      console.log(
        `dropColumn behind a long transaction: ${writesWhileHeld} writes went through while it was open; the writer's longest wait ${longestWaitMs} ms (lockTimeoutMs 200)`,
      );
    } finally {
      writing = false;
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
      writerConn.release();
    }
  });
});
