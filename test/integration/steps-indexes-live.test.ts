import { Client as PgClient } from 'pg';
import {
  env,
  spawnWorker,
  startWorker,
  exited,
  unique,
  waitFor,
  sleep,
  makeCounterTable,
  pool,
  client,
  taskQueue,
  useStack,
} from './harness';
import { makeOrders, startSpec, outcome, progressOf, waitForApproval } from './rollout-harness';
import { catalogOf } from '../../chaos/sql';
import { rollbackSignal } from '../../workflows/definitions';
import type { WorkflowHandle } from '@temporalio/client';
import { withWorker } from './backfill-harness';

/**
 * The index and constraint step kinds under live traffic, on the real server
 * and database: a concurrent build next to a writer, a worker SIGKILLed
 * mid-build, DDL behind a long-open transaction, duplicates found before any lock.
 * Waits are printed as figures, never asserted as timings. Needs dist/ (a real worker process).
 */
jest.setTimeout(240_000);

useStack({ worker: true });

type Writer = ReturnType<typeof startWriter>;

/** A writer on its own connection: inserts and updates back to back; the longest single statement is how long it was blocked. */
function startWriter(table: string, firstNewId: number, maxId: number) {
  const db = new PgClient({ connectionString: env().databaseUrl, application_name: 'test-writer' });
  let isStopped = false;
  let longestMs = 0;
  let statements = 0;
  let errors = 0;
  const running = (async () => {
    await db.connect();
    let id = firstNewId;
    while (!isStopped) {
      const t0 = performance.now();
      try {
        if (statements % 2 === 0) await db.query(`INSERT INTO ${table} (id, n, v) VALUES ($1, 0, $2)`, [id++, id % 1000]);
        else await db.query(`UPDATE ${table} SET n = n + 1 WHERE id = $1`, [1 + Math.floor(Math.random() * maxId)]);
      } catch {
        errors++;
      }
      longestMs = Math.max(longestMs, performance.now() - t0);
      statements++;
    }
  })();
  return {
    /** Starts a new measuring window; returns the longest wait of the one it ends. */
    reset() {
      const was = longestMs;
      longestMs = 0;
      return was;
    },
    async stop() {
      isStopped = true;
      await running;
      await db.end();
      return { longestMs, statements, errors };
    },
  };
}

/**
 * Declared IMMUTABLE so it can key an index; sleeps on a few rows so a build
 * over 1M rows lasts seconds (long enough to kill a worker in the middle of it).
 */
async function makeSlowKey(name: string): Promise<string> {
  await pool.query(
    `CREATE FUNCTION public."${name}"(v int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN IF v % 20000 = 0 THEN PERFORM pg_sleep(0.05); END IF; RETURN v; END $$`,
  );
  return `public."${name}"`;
}

async function indexesNamed(table: string, name: string): Promise<{ name: string; valid: boolean }[]> {
  const { rows } = await pool.query(
    `SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass AND c.relname LIKE $2 ORDER BY 1`,
    [table, `${name}%`],
  );
  return rows;
}

async function buildPhase(table: string): Promise<string | undefined> {
  const { rows } = await pool.query(`SELECT phase FROM pg_stat_progress_create_index WHERE relid = $1::regclass`, [table]);
  return rows[0]?.phase;
}

describe('createIndex on 1M rows', () => {
  let table: string;
  let slowKey: string;
  const total = 1_000_000;
  beforeAll(async () => {
    table = await makeCounterTable(pool, unique('big'), total);
    slowKey = await makeSlowKey(unique('slow_key'));
  });

  test('a writer inserting and updating throughout the build is never blocked by it; the index ends valid', async () => {
    const taskQueue = unique('q');
    const w = await startWorker(taskQueue);
    const writer = startWriter(table, 10_000_000, total);
    try {
      await sleep(300);
      writer.reset();
      const started = Date.now();
      const name = unique('live').slice(0, 40);
      const { handle } = await startSpec(client, taskQueue, {
        kind: 'rollout',
        name: unique('ci'),
        table,
        steps: [{ kind: 'createIndex', name, expressions: [`${slowKey}(v)`], columns: ['n'] }],
      });
      const out = await outcome(handle);
      const buildMs = Date.now() - started;
      const figures = await writer.stop();
      expect(out.state).toBe('completed');
      expect(figures.errors).toBe(0);
      expect(await indexesNamed(table, name)).toEqual([{ name, valid: true }]);
      console.log(
        `[createIndex 1M rows] rollout ${buildMs} ms; writer: ${figures.statements} statements meanwhile, longest wait ${figures.longestMs.toFixed(1)} ms`,
      );
      expect(figures.statements).toBeGreaterThan(100); // it really wrote throughout
    } finally {
      await writer.stop().catch(() => undefined);
      await w.stop();
    }
  });

  test('the worker process SIGKILLed mid-build: the retry drops the INVALID leftover and ends with exactly one valid index', async () => {
    const taskQueue = unique('q');
    let worker = spawnWorker(taskQueue);
    const writer = startWriter(table, 20_000_000, total);
    try {
      const name = unique('crash').slice(0, 40);
      const { handle } = await startSpec(client, taskQueue, {
        kind: 'rollout',
        name: unique('ci'),
        table,
        steps: [{ kind: 'createIndex', name, expressions: [`${slowKey}(v)`] }],
      });
      await waitFor('the concurrent build under way', async () => /building index/.test((await buildPhase(table)) ?? ''), 60_000, 50);
      worker.kill('SIGKILL');
      await exited(worker);
      // the backend notices its client is gone (client_connection_check_interval) and leaves the index INVALID
      const leftover = await waitFor(
        'the interrupted build to stop',
        async () => ((await buildPhase(table)) === undefined ? indexesNamed(table, name) : undefined),
        30_000,
        100,
      );
      expect(leftover).toEqual([{ name, valid: false }]);
      worker = spawnWorker(taskQueue);
      const out = await outcome(handle);
      const figures = await writer.stop();
      expect(out.state).toBe('completed');
      expect(await indexesNamed(table, name)).toEqual([{ name, valid: true }]);
      // no other index of the table is left INVALID either
      expect(
        (await pool.query(`SELECT count(*)::int AS n FROM pg_index WHERE indrelid = $1::regclass AND NOT indisvalid`, [table])).rows[0].n,
      ).toBe(0);
      const step = await pool.query(
        `SELECT s.detail FROM stagefill.rollout_steps s JOIN stagefill.rollouts r ON r.id = s.rollout_id WHERE r.workflow_id = $1`,
        [handle.workflowId],
      );
      expect(step.rows[0].detail).toMatchObject({ index: name, droppedInvalidLeftover: true });
      console.log(`[createIndex SIGKILL] writer: ${figures.statements} statements, longest wait ${figures.longestMs.toFixed(1)} ms`);
    } finally {
      await writer.stop().catch(() => undefined);
      worker.kill('SIGKILL');
      await exited(worker);
    }
  });
});

const vDefault = `SELECT pg_get_expr(d.adbin, d.adrelid) AS def FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = $1::regclass AND a.attname = 'v'`;

/**
 * With a worker of its own: a session that runs `hold` on `table` inside a transaction it leaves open, and a writer on
 * the table; then `fn`. After it the transaction is rolled back if still open, the session ended, the writer and worker stopped.
 */
function behindOpenTransaction(table: string, hold: string, fn: (taskQueue: string, holder: PgClient, writer: Writer) => Promise<void>) {
  return withWorker(async (taskQueue) => {
    const holder = new PgClient({ connectionString: env().databaseUrl, application_name: 'test-holder' });
    await holder.connect();
    const writer = startWriter(table, 1_000_000, 10_000);
    try {
      await holder.query('BEGIN');
      await holder.query(hold);
      await fn(taskQueue, holder, writer);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
      await writer.stop().catch(() => undefined);
    }
  });
}

/** Waits until the rollout's running activity is on its third attempt (its DDL timed out and was retried). */
const thirdAttempt = (handle: WorkflowHandle) =>
  waitFor('a third attempt', async () => ((await handle.describe()).raw.pendingActivities?.[0]?.attempt ?? 0) >= 3, 60_000, 200);

/** Commits the holding transaction and waits for the rollout to complete; the writer's longest wait while held, and its figures. */
async function releaseAndComplete(holder: PgClient, writer: Writer, handle: WorkflowHandle) {
  const whileHeld = writer.reset();
  await holder.query('COMMIT');
  const out = await outcome(handle);
  const figures = await writer.stop();
  expect(out.state).toBe('completed');
  return { whileHeld, figures };
}

test('a long-open transaction holds the table: the DDL waits under lock_timeout and retries, writers wait at most about that long, and the step goes on once it ends', async () => {
  const table = await makeCounterTable(pool, unique('held'), 10_000);
  await behindOpenTransaction(table, `LOCK TABLE ${table} IN ACCESS SHARE MODE`, async (taskQueue, holder, writer) => {
    await sleep(1500);
    const baseline = writer.reset(); // the same writer with nothing of stagefill's running: the machine's own noise
    const lockTimeoutMs = 300;
    const { handle } = await startSpec(client, taskQueue, {
      kind: 'rollout',
      name: unique('held'),
      table,
      lockTimeoutMs,
      steps: [
        { kind: 'setDefault', column: 'v', default: '7' },
        { kind: 'setComment', on: 'column', name: 'v', comment: 'a value' },
      ],
    });
    // the ALTER keeps timing out and being retried by Temporal with backoff
    await thirdAttempt(handle);
    const { rows } = await pool.query(vDefault, [table]);
    expect(rows).toEqual([]); // nothing applied while the transaction is open
    expect((await progressOf(handle)).state).toBe('running');
    const { whileHeld, figures } = await releaseAndComplete(holder, writer, handle);
    expect((await pool.query(vDefault, [table])).rows).toEqual([{ def: '7' }]);
    console.log(
      `[lock_timeout ${lockTimeoutMs} ms] writer's longest wait while the transaction held the table and the DDL retried: ${whileHeld.toFixed(1)} ms (before the rollout started: ${baseline.toFixed(1)} ms; ${figures.statements} statements, ${figures.errors} errors)`,
    );
    expect(figures.errors).toBe(0);
  });
});

test('createIndex behind a long-open writing transaction: the concurrent build waits under lock_timeout, retries, and ends as one valid index once it ends', async () => {
  const table = await makeCounterTable(pool, unique('heldci'), 10_000);
  // an uncommitted insert: ROW EXCLUSIVE, which CREATE INDEX CONCURRENTLY must wait out (writers are not blocked by it)
  await behindOpenTransaction(table, `INSERT INTO ${table} (id, n, v) VALUES (-1, 0, 0)`, async (taskQueue, holder, writer) => {
    writer.reset();
    const name = unique('held_ix').slice(0, 40);
    const { handle } = await startSpec(client, taskQueue, {
      kind: 'rollout',
      name: unique('heldci'),
      table,
      lockTimeoutMs: 300,
      steps: [{ kind: 'createIndex', name, columns: ['v'] }],
    });
    await thirdAttempt(handle);
    expect((await indexesNamed(table, name)).every((i) => !i.valid)).toBe(true); // at most the INVALID entry of a timed-out attempt
    const { whileHeld, figures } = await releaseAndComplete(holder, writer, handle);
    expect(await indexesNamed(table, name)).toEqual([{ name, valid: true }]);
    console.log(
      `[createIndex behind an open transaction, lock_timeout 300 ms] writer's longest wait meanwhile: ${whileHeld.toFixed(1)} ms (${figures.statements} statements, ${figures.errors} errors)`,
    );
    expect(figures.errors).toBe(0);
  });
});

describe('clear failures', () => {
  test('addUnique over duplicates fails before taking any lock, naming sample duplicates', async () => {
    const table = await makeOrders(pool, unique('dups'), 3_000);
    const bare = table.split('.')[1];
    // SHARE conflicts with everything addUnique's DDL takes (SHARE UPDATE EXCLUSIVE, ACCESS EXCLUSIVE), not with a plain SELECT
    const holder = new PgClient({ connectionString: env().databaseUrl, application_name: 'test-holder' });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE ${table} IN SHARE MODE`);
      const { handle } = await startSpec(client, taskQueue, {
        kind: 'rollout',
        name: unique('dups'),
        table,
        lockTimeoutMs: 200,
        steps: [{ kind: 'addUnique', columns: ['customer_id', 'status'] }],
      });
      const out = await outcome(handle);
      // still inside the holder's transaction: the failure came without waiting for any lock
      expect(
        (
          await holder.query(
            'SELECT count(*)::int AS n FROM pg_locks WHERE locktype = $1 AND relation = $2::regclass AND granted AND mode = $3',
            ['relation', table, 'ShareLock'],
          )
        ).rows[0].n,
      ).toBe(1);
      expect(out.state).toBe('rolled_back');
      expect(out.failure).toMatch(/has rows with the same \(customer_id, status\)/);
      expect(out.failure).toMatch(/e\.g\. \(\d+,\w+\) x\d+(, \(\d+,\w+\) x\d+){4}\. Remove the duplicates first/);
      expect(
        (await pool.query(`SELECT count(*)::int AS n FROM pg_class WHERE relname = $1`, [`${bare}_customer_id_status_key`])).rows[0].n,
      ).toBe(0);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
  });

  test('a unique createIndex over duplicates fails naming them, and leaves no INVALID index behind', async () => {
    const table = await makeOrders(pool, unique('udup'), 500);
    const { handle } = await startSpec(client, taskQueue, {
      kind: 'rollout',
      name: unique('udup'),
      table,
      steps: [{ kind: 'createIndex', unique: true, name: 'udup_customer', columns: ['customer_id'] }],
    });
    const out = await outcome(handle);
    expect(out.state).toBe('rolled_back');
    expect(out.failure).toMatch(
      /has duplicate keys, so unique index udup_customer cannot be built; remove them first \(.*Key \(customer_id\)=\(\d+\) is duplicated/,
    );
    expect(await indexesNamed(table, 'udup_customer')).toEqual([]);
  });

  test('dropNotNull rolled back after NULLs were written: the rollback holds (no stray check left) until they are filled in, then restores NOT NULL', async () => {
    const table = await makeOrders(pool, unique('nn'), 500);
    const before = await catalogOf(pool, table);
    const { handle } = await startSpec(client, taskQueue, {
      kind: 'rollout',
      name: unique('nn'),
      table,
      steps: [
        { kind: 'dropNotNull', column: 'qty' },
        { kind: 'approval', timeout: '5m' },
      ],
    });
    await waitForApproval(handle);
    await pool.query(`UPDATE ${table} SET qty = NULL WHERE id <= 3`);
    await handle.signal(rollbackSignal, { by: 'test' });
    await waitFor(
      'a second revert attempt',
      async () => ((await handle.describe()).raw.pendingActivities?.[0]?.attempt ?? 0) >= 2,
      60_000,
      200,
    );
    const pending = (await handle.describe()).raw.pendingActivities?.[0];
    expect(pending?.lastFailure?.message).toMatch(/qty got NULLs while it was nullable, so NOT NULL cannot come back; fill them in/);
    expect(
      (await pool.query(`SELECT count(*)::int AS n FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'c'`, [table])).rows[0].n,
    ).toBe(0);
    await pool.query(`UPDATE ${table} SET qty = 1 WHERE qty IS NULL`);
    const out = await outcome(handle);
    expect(out.state).toBe('rolled_back');
    expect(await catalogOf(pool, table)).toEqual(before);
  });

  test('createIndex onto a name taken by an index it did not create, and a foreign key to columns without a unique index: errors naming the field', async () => {
    const table = await makeOrders(pool, unique('errs'), 500);
    const bare = table.split('.')[1];
    await pool.query(`CREATE INDEX "${bare}_taken" ON ${table} (qty)`);
    const a = await startSpec(client, taskQueue, {
      kind: 'rollout',
      name: unique('clash'),
      table,
      steps: [{ kind: 'createIndex', name: `${bare}_taken`, columns: ['status'] }],
    });
    const outA = await outcome(a.handle);
    expect(outA.state).toBe('rolled_back');
    expect(outA.failure).toMatch(
      new RegExp(`name: an index on ${table} named "${bare}_taken" already exists and was not created by this step`),
    );
    expect(await indexesNamed(table, `${bare}_taken`)).toEqual([{ name: `${bare}_taken`, valid: true }]);

    const b = await startSpec(client, taskQueue, {
      kind: 'rollout',
      name: unique('fk'),
      table,
      steps: [{ kind: 'addForeignKey', columns: ['qty'], references: { table, columns: ['customer_id'] } }],
    });
    const outB = await outcome(b.handle);
    expect(outB.state).toBe('rolled_back');
    expect(outB.failure).toMatch(/references\.columns: .* has no primary key or valid unique index on exactly \(customer_id\)/);
  });
});
