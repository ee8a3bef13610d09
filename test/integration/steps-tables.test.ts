import type { WorkflowHandle } from '@temporalio/client';
import { startWorker, unique, waitFor, sleep, pool, client, useStack } from './harness';
import { makeOrders, catalogOf, legacyChecksum, startSpec, progressOf, outcome } from './rollout-harness';
import { rollbackSignal, retrySignal } from '../../workflows/definitions';
import { recordFacts } from './report';

/**
 * The table and column step kinds (createTable, dropColumn, dropTable,
 * renameTable) and sql's transaction: false / onContract, end to end on the
 * real server and database: forward to contract, and in a second run rolled
 * back at an approval step with the catalog as before.
 */

jest.setTimeout(240_000);

useStack();

/** catalogOf (columns, constraints, indexes, triggers, views, view schemas) and the comments on the table and its columns. */
async function snapshot(table: string): Promise<unknown> {
  const [schema, name] = table.split('.');
  const { rows: comments } = await pool.query(
    `SELECT coalesce(a.attname, '') AS col, d.description
       FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
      WHERE n.nspname = $1 AND c.relname = $2 ORDER BY 1`,
    [schema, name],
  );
  return { ...((await catalogOf(pool, table)) as object), comments };
}

const exists = async (relation: string) => (await pool.query(`SELECT to_regclass($1) IS NOT NULL AS e`, [relation])).rows[0].e as boolean;
const columnsOf = async (relation: string) => (await pool.query(`SELECT * FROM ${relation} LIMIT 0`)).fields.map((f) => f.name);
const waitingApproval = (handle: WorkflowHandle) =>
  waitFor('waiting for approval', async () => (await progressOf(handle)).state === 'waiting_approval');
const approve = (handle: WorkflowHandle) => handle.signal('approve', { by: 'test' });
const rollBack = (handle: WorkflowHandle) => handle.signal(rollbackSignal, { by: 'test', reason: 'second run: roll back at approval' });
const tail = [{ kind: 'approval', timeout: '2m' }, { kind: 'contract' }];
const viewOf = (table: string, version: number, name = table.split('.')[1]) => `"${table.replace('.', '_')}_v${version}"."${name}"`;

let taskQueue: string;
let stopWorker: () => Promise<void>;
beforeAll(async () => {
  taskQueue = unique('q');
  stopWorker = (await startWorker(taskQueue)).stop;
});
afterAll(async () => stopWorker?.());

/** Starts a rollout, waits at its approval step, runs `atApproval`, then approves (forward) or signals rollback. */
async function run(spec: object, how: 'forward' | 'rollback', atApproval: (handle: WorkflowHandle) => Promise<void> = async () => {}) {
  const { handle } = await startSpec(client, taskQueue, { kind: 'rollout', name: unique('r'), rollbackWindow: '1s', ...spec });
  await waitingApproval(handle);
  await atApproval(handle);
  await (how === 'forward' ? approve(handle) : rollBack(handle));
  const out = await outcome(handle);
  return { handle, out };
}

describe('createTable', () => {
  const createSteps = (table: string, orders: string) => [
    {
      kind: 'createTable',
      table,
      columns: [
        { name: 'id', type: 'bigint', notNull: true },
        { name: 'order_id', type: 'bigint', notNull: true, references: { table: orders, column: 'id', onDelete: 'CASCADE' } },
        { name: 'amount', type: 'numeric(12,2)', notNull: true, default: '0' },
        { name: 'reason', type: 'text' },
      ],
      primaryKey: ['id'],
      unique: [{ columns: ['order_id', 'reason'] }],
      checks: [{ name: `${table.split('.')[1]}_amount_ok`, expression: 'amount >= 0' }],
      indexes: [{ columns: ['reason'] }],
    },
  ];

  test('forward to contract, then a second run rolled back at approval: the catalog as before', async () => {
    const orders = await makeOrders(pool, unique('orders'), 10);
    const ordersBefore = await snapshot(orders);
    const table = `public.${unique('refunds')}`;
    const first = await run({ table, steps: [...createSteps(table, orders), ...tail] }, 'forward');
    expect(first.out.state).toBe('completed');
    const cat = (await snapshot(table)) as { columns: { attname: string }[]; constraints: { def: string }[]; indexes: { def: string }[] };
    expect(cat.columns.map((c) => c.attname).sort()).toEqual(['amount', 'id', 'order_id', 'reason']);
    expect(cat.constraints.map((c) => c.def)).toEqual(
      expect.arrayContaining([
        'PRIMARY KEY (id)',
        'CHECK ((amount >= (0)::numeric))',
        'UNIQUE (order_id, reason)',
        expect.stringMatching(/^FOREIGN KEY \(order_id\) REFERENCES .* ON DELETE CASCADE$/),
      ]),
    );
    expect(cat.indexes.some((x) => /USING btree \(reason\)/.test(x.def))).toBe(true);
    await pool.query(`INSERT INTO ${orders} SELECT 999, 1, 1, 1, 'new', now()`);
    await pool.query(`INSERT INTO ${table} (id, order_id, reason) VALUES (1, 999, 'late')`);

    const again = `public.${unique('refunds')}`;
    const before = await snapshot(again);
    const second = await run({ table: again, steps: [...createSteps(again, orders), ...tail] }, 'rollback', async () =>
      expect(await exists(again)).toBe(true),
    );
    expect(second.out.state).toBe('rolled_back');
    expect(await exists(again)).toBe(false);
    expect(await snapshot(again)).toEqual(before);
    expect(second.out.result?.catalog?.every((c) => c.equal)).toBe(true);
    // the table it referenced lost nothing either (its catalog before the first run's late row)
    expect(await snapshot(orders)).toEqual(ordersBefore);
  });

  test('the revert holds while the table has rows or a shape stagefill did not make, says why, and drops it on retry once they are gone', async () => {
    const orders = await makeOrders(pool, unique('orders'), 10);
    const table = `public.${unique('refunds')}`;
    const { handle } = await startSpec(client, taskQueue, {
      kind: 'rollout',
      name: unique('r'),
      table,
      steps: [...createSteps(table, orders), ...tail],
    });
    await waitingApproval(handle);
    // someone else writes a row, then the rollout is rolled back
    await pool.query(`INSERT INTO ${table} (id, order_id, reason) VALUES (1, 1, 'someone else')`);
    await rollBack(handle);
    const held = await waitFor('held on rows', async () => {
      const p = await progressOf(handle);
      return p.state === 'held' && p;
    });
    const step = held.steps.find((s) => s.kind === 'createTable')!;
    expect(step.state).toBe('held');
    expect(held.lastError).toMatch(
      new RegExp(`${table} holds 1 row written after stagefill created it; not dropping data it did not write`),
    );
    expect(await exists(table)).toBe(true);

    // the row goes, but a column comes: still not what stagefill created
    await pool.query(`DELETE FROM ${table}`);
    await pool.query(`ALTER TABLE ${table} ADD COLUMN extra int`);
    await handle.signal(retrySignal, { by: 'test' });
    await waitFor('held on the changed shape', async () =>
      /changed since stagefill created it \(.*column extra added/.test((await progressOf(handle)).lastError ?? ''),
    );
    expect((await progressOf(handle)).state).toBe('held');
    expect(await exists(table)).toBe(true);

    // back to what stagefill made: retry drops it
    await pool.query(`ALTER TABLE ${table} DROP COLUMN extra`);
    await handle.signal(retrySignal, { by: 'test' });
    const out = await outcome(handle);
    expect(out.state).toBe('rolled_back');
    expect(await exists(table)).toBe(false);
    const events = await pool.query(
      `SELECT count(*)::int AS n FROM stagefill.events WHERE workflow_id = $1 AND event = 'step_revert_held'`,
      [handle.workflowId],
    );
    expect(events.rows[0].n).toBe(2);
  });
});

describe('dropColumn', () => {
  const steps = [{ kind: 'dropColumn', column: 'status', down: "'via v2'" }, { kind: 'expose', version: 2 }, ...tail];

  test('hidden from v2 at expose, inserts through v2 get down, dropped at contract; a second run rolled back leaves the catalog as before', async () => {
    const table = await makeOrders(pool, unique('orders'), 100);
    const sum = await legacyChecksum(pool, table);
    const first = await run({ table, steps }, 'forward', async () => {
      expect(await columnsOf(viewOf(table, 2))).not.toContain('status');
      expect(await columnsOf(viewOf(table, 1))).toContain('status');
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

    const other = await makeOrders(pool, unique('orders'), 100);
    const before = await snapshot(other);
    const otherSum = await legacyChecksum(pool, other);
    const second = await run({ table: other, steps }, 'rollback');
    expect(second.out.state).toBe('rolled_back');
    expect(await snapshot(other)).toEqual(before);
    expect(await legacyChecksum(pool, other)).toBe(otherSum);
  });

  test('without down, a NOT NULL column without a default is refused at apply, naming down', async () => {
    const table = await makeOrders(pool, unique('orders'), 10);
    const before = await snapshot(table);
    const { handle } = await startSpec(client, taskQueue, {
      kind: 'rollout',
      name: unique('r'),
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
    const { handle } = await startSpec(client, taskQueue, {
      kind: 'rollout',
      name: unique('r'),
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
      const { handle } = await startSpec(client, taskQueue, {
        kind: 'rollout',
        name: unique('r'),
        table,
        lockTimeoutMs: 200,
        steps: [{ kind: 'dropColumn', column: 'status', down: "'x'" }],
      });
      await waitFor('the step to try its lock', async () => (await progressOf(handle)).steps[0].state === 'running');
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

describe('dropTable and renameTable', () => {
  test('dropTable: v2 does not see the table, contract drops it and its view schemas; rolled back, the catalog is as before', async () => {
    const table = await makeOrders(pool, unique('orders'), 20);
    const steps = [{ kind: 'dropTable' }, { kind: 'expose', version: 2 }, ...tail];
    const first = await run({ table, steps }, 'forward', async () => {
      expect(await exists(viewOf(table, 1))).toBe(true);
      expect(await exists(viewOf(table, 2))).toBe(false);
      expect(
        (await pool.query(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1`, [`${table.replace('.', '_')}_v2`])).rows[0].n,
      ).toBe(1);
    });
    expect(first.out.state).toBe('completed');
    expect(await exists(table)).toBe(false);
    expect(((await snapshot(table)) as { viewSchemas: unknown[] }).viewSchemas).toEqual([]);

    const other = await makeOrders(pool, unique('orders'), 20);
    const before = await snapshot(other);
    const sum = await legacyChecksum(pool, other);
    const second = await run({ table: other, steps }, 'rollback');
    expect(second.out.state).toBe('rolled_back');
    expect(await snapshot(other)).toEqual(before);
    expect(await legacyChecksum(pool, other)).toBe(sum);
  });

  test('dropTable is refused at apply while a view of someone else reads the table', async () => {
    const table = await makeOrders(pool, unique('orders'), 5);
    await pool.query(`CREATE VIEW ${table}_report AS SELECT id FROM ${table}`);
    const { handle } = await startSpec(client, taskQueue, {
      kind: 'rollout',
      name: unique('r'),
      table,
      steps: [{ kind: 'dropTable' }, { kind: 'expose', version: 2 }],
    });
    const out = await outcome(handle);
    expect(out.state).toBe('rolled_back');
    expect(out.failure).toMatch(/cannot be dropped at contract while view public\..*_report depends on it/);
  });

  test('renameTable: v2 sees the new name, contract renames the table; rolled back, the catalog is as before', async () => {
    const table = await makeOrders(pool, unique('orders'), 20);
    const to = unique('purchases');
    const steps = [{ kind: 'renameTable', to }, { kind: 'expose', version: 2 }, ...tail];
    const first = await run({ table, steps }, 'forward', async () => {
      expect(await exists(viewOf(table, 2, to))).toBe(true);
      expect(await exists(viewOf(table, 2))).toBe(false);
      expect((await pool.query(`SELECT count(*)::int AS n FROM ${viewOf(table, 2, to)}`)).rows[0].n).toBe(20);
    });
    expect(first.out.state).toBe('completed');
    expect(await exists(table)).toBe(false);
    expect(await exists(`public.${to}`)).toBe(true);
    // the new version's view follows the table
    expect((await pool.query(`SELECT count(*)::int AS n FROM ${viewOf(table, 2, to)}`)).rows[0].n).toBe(20);

    const other = await makeOrders(pool, unique('orders'), 20);
    const before = await snapshot(other);
    const second = await run(
      { table: other, steps: [{ kind: 'renameTable', to: unique('purchases') }, { kind: 'expose', version: 2 }, ...tail] },
      'rollback',
    );
    expect(second.out.state).toBe('rolled_back');
    expect(await snapshot(other)).toEqual(before);
  });
});

describe('sql: transaction: false and onContract', () => {
  const steps = (table: string, index: string) => [
    {
      kind: 'sql',
      apply: `CREATE INDEX CONCURRENTLY "${index}" ON ${table} (qty)`,
      revert: `DROP INDEX CONCURRENTLY IF EXISTS public."${index}"`,
      transaction: false,
      check: `SELECT to_regclass('public."${index}"') IS NOT NULL`,
      onContract: `COMMENT ON TABLE ${table} IS 'orders, v2'`,
    },
    ...tail,
  ];

  test('CREATE INDEX CONCURRENTLY runs outside a transaction, onContract at contract; rolled back, the catalog is as before', async () => {
    const table = await makeOrders(pool, unique('orders'), 1000);
    const index = unique('qty_idx');
    const first = await run({ table, steps: steps(table, index) }, 'forward', async () => {
      expect(await exists(`public."${index}"`)).toBe(true);
      // onContract has not run yet
      expect((await pool.query(`SELECT obj_description($1::regclass, 'pg_class') AS c`, [table])).rows[0].c).toBeNull();
    });
    expect(first.out.state).toBe('completed');
    const valid = await pool.query(`SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, [`public."${index}"`]);
    expect(valid.rows[0].indisvalid).toBe(true);
    expect((await pool.query(`SELECT obj_description($1::regclass, 'pg_class') AS c`, [table])).rows[0].c).toBe('orders, v2');

    const other = await makeOrders(pool, unique('orders'), 1000);
    const before = await snapshot(other);
    const second = await run({ table: other, steps: steps(other, unique('qty_idx')) }, 'rollback');
    expect(second.out.state).toBe('rolled_back');
    expect(await snapshot(other)).toEqual(before);
  });

  test('when check says it already ran, apply is skipped and the revert leaves what was there', async () => {
    const table = await makeOrders(pool, unique('orders'), 100);
    const index = unique('qty_idx');
    await pool.query(`CREATE INDEX "${index}" ON ${table} (qty)`);
    const before = await snapshot(table);
    const { handle, out } = await run({ table, steps: steps(table, index) }, 'rollback');
    expect(out.state).toBe('rolled_back');
    expect(await snapshot(table)).toEqual(before); // the index someone else made is still there
    const detail = await pool.query(
      `SELECT s.detail FROM stagefill.rollout_steps s JOIN stagefill.rollouts r ON r.id = s.rollout_id WHERE r.workflow_id = $1 AND s.kind = 'sql'`,
      [handle.workflowId],
    );
    expect(detail.rows[0].detail).toMatchObject({ wasDoneBefore: true, ran: false });
  });
});

test('mixed-case names: createTable, dropColumn with down and renameTable quote every identifier, forward to contract', async () => {
  const base = unique('Orders');
  await pool.query(`CREATE TABLE public."${base}" (id bigint PRIMARY KEY, "Status" text NOT NULL, "Qty" int)`);
  await pool.query(`INSERT INTO public."${base}" SELECT g, 'new', g FROM generate_series(1, 10) g`);
  const table = `public.${base}`;
  const created = `public.${unique('Refunds')}`;
  const to = unique('Purchases');
  const v2 = `"public_${base}_v2"."${to}"`;
  const { out } = await run(
    {
      table,
      steps: [
        {
          kind: 'createTable',
          table: created,
          columns: [
            { name: 'Id', type: 'bigint', notNull: true },
            { name: 'Order_Ref', type: 'bigint' },
          ],
          primaryKey: ['Id'],
          indexes: [{ name: `${created.split('.')[1]}_Ref`, columns: ['Order_Ref'] }],
        },
        { kind: 'dropColumn', column: 'Status', down: `'from v2 ' || "Qty"` },
        { kind: 'renameTable', to },
        { kind: 'expose', version: 2 },
        ...tail,
      ],
    },
    'forward',
    async () => {
      expect(await columnsOf(v2)).toEqual(['id', 'Qty']);
      await pool.query(`INSERT INTO ${v2} (id, "Qty") VALUES (100, 7)`);
      expect((await pool.query(`SELECT "Status" FROM public."${base}" WHERE id = 100`)).rows[0].Status).toBe('from v2 7');
    },
  );
  expect(out.state).toBe('completed');
  expect(await exists(`public."${base}"`)).toBe(false);
  expect(await columnsOf(`public."${to}"`)).toEqual(['id', 'Qty']);
  expect(await columnsOf(`public."${created.split('.')[1]}"`)).toEqual(['Id', 'Order_Ref']);
});
