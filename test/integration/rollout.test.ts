import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SA } from '../../workflows/search-attributes';
import { env, startWorker, spawnWorker, exited, unique, waitFor, sleep, pool, client, useStack } from './harness';
import { makeOrders, legacyChecksum, startSpec, progressOf, outcome, centsColumn, centsGate } from './rollout-harness';
import { catalogOf } from '../../chaos/sql';
import { ownWorker, rolloutOnOwnWorker, waitForState } from './own-worker';
import { recordFacts } from './report';

jest.setTimeout(240_000);

useStack();

const temporalCli = async (workflowId: string, ...args: string[]) =>
  (
    await promisify(execFile)(
      env().cli,
      [...args, '--address', env().address, '--namespace', env().namespace, '--workflow-id', workflowId],
      { encoding: 'utf8' },
    )
  ).stdout;

test('addColumn + backfill + gate + expose under a live writer: every row right, both read paths consistent', async () => {
  const table = await makeOrders(pool, unique('orders'), 20_000);
  const before = await legacyChecksum(pool, table);
  const taskQueue = unique('q');
  const w = await startWorker(taskQueue);
  // A writer inserting and updating rows the whole time: the dual-write trigger must keep them right.
  let writing = true;
  let writes = 0;
  const writer = (async () => {
    let id = 1_000_000;
    while (writing) {
      await pool.query(`INSERT INTO ${table} (id, customer_id, amount, qty, status, created_at) VALUES ($1, 1, $2, 1, 'new', now())`, [
        id++,
        (id % 997) + 0.37,
      ]);
      await pool.query(`UPDATE ${table} SET amount = amount + 1 WHERE id = $1`, [1 + ((id * 7919) % 20_000)]);
      writes += 2;
    }
  })();
  try {
    const { handle } = await startSpec(client, taskQueue, {
      kind: 'rollout',
      name: unique('cents'),
      table,
      steps: [centsColumn(1000), centsGate(table), { kind: 'expose', version: 2 }],
    });
    const out = await outcome(handle);
    writing = false;
    await writer;
    expect(out.state).toBe('completed');
    expect(writes).toBeGreaterThan(20);
    const wrong = await pool.query(
      `SELECT count(*)::int AS n FROM ${table} WHERE amount_cents IS DISTINCT FROM round(amount * 100)::bigint`,
    );
    expect(wrong.rows[0].n).toBe(0);
    // legacy readers (v1) and new readers (v2) see the same rows; only v2 has the new column
    const [schema, name] = table.split('.');
    const v1 = `"${schema}_${name}_v1"."${name}"`;
    const v2 = `"${schema}_${name}_v2"."${name}"`;
    const counts = await pool.query(
      `SELECT (SELECT count(*) FROM ${v1})::int AS v1, (SELECT count(*) FROM ${v2})::int AS v2, (SELECT count(*) FROM ${table})::int AS t`,
    );
    expect(counts.rows[0].v1).toBe(counts.rows[0].t);
    expect(counts.rows[0].v2).toBe(counts.rows[0].t);
    const v1cols = (await pool.query(`SELECT * FROM ${v1} LIMIT 1`)).fields.map((f) => f.name);
    const v2cols = (await pool.query(`SELECT * FROM ${v2} LIMIT 1`)).fields.map((f) => f.name);
    expect(v1cols).not.toContain('amount_cents');
    expect(v2cols).toContain('amount_cents');
    const flag = await pool.query(`SELECT version FROM stagefill.read_paths WHERE table_name = $1`, [table]);
    expect(flag.rows[0].version).toBe(2);
    expect(before).not.toBe(await legacyChecksum(pool, table)); // the writer really wrote
    recordFacts('live writer during addColumn + backfill + gate + expose', {
      liveWrites: writes,
      rowsChecked: counts.rows[0].t,
      rowsWrong: 0,
    });
  } finally {
    writing = false;
    await writer;
    await w.stop();
  }
});

test('a failing gate rolls every step kind back: catalog as before, legacy data unchanged', async () => {
  const table = await makeOrders(pool, unique('orders'), 5_000);
  const catalogBefore = await catalogOf(pool, table);
  const sumBefore = await legacyChecksum(pool, table);
  const [, bare] = table.split('.');
  const { handle } = await rolloutOnOwnWorker({
    name: unique('everything'),
    table,
    steps: [
      centsColumn(1000),
      {
        kind: 'alterColumn',
        column: 'status',
        newName: 'order_state',
        up: 'upper(status)',
        down: 'lower(order_state)',
        backfill: { chunkSize: 2000 },
      },
      { kind: 'setNotNull', column: 'amount_cents' },
      { kind: 'addCheck', name: 'cents_not_negative', expression: 'amount_cents >= 0' },
      { kind: 'sql', apply: `CREATE INDEX "${bare}_qty_idx" ON ${table} (qty)`, revert: `DROP INDEX public."${bare}_qty_idx"` },
      {
        kind: 'backfill',
        key: 'id',
        chunkSize: 2000,
        transform: `UPDATE ${table} SET amount_cents = amount_cents WHERE id >= :lo AND id < :hi`,
      },
      { kind: 'expose', version: 2 },
      { kind: 'gate', checks: [{ name: 'impossible', sql: 'SELECT 1', expect: { eq: 0 } }] },
    ],
  });
  const out = await outcome(handle);
  expect(out.state).toBe('rolled_back');
  expect(out.failure).toMatch(/check "impossible" got 1, expected = 0/);
  expect(await catalogOf(pool, table)).toEqual(catalogBefore);
  expect(await legacyChecksum(pool, table)).toBe(sumBefore);
  expect(out.result?.catalog?.every((c) => c.equal)).toBe(true);
  const p = await progressOf(handle);
  const byId = Object.fromEntries(p.steps.map((s) => [s.kind, s.state]));
  expect(byId).toMatchObject({
    addColumn: 'reverted',
    alterColumn: 'reverted',
    setNotNull: 'reverted',
    addCheck: 'reverted',
    sql: 'reverted',
    expose: 'reverted',
  });
  const audit = await pool.query(`SELECT event FROM stagefill.events WHERE workflow_id = $1 ORDER BY id`, [handle.workflowId]);
  expect(audit.rows.map((r) => r.event)).toEqual(expect.arrayContaining(['rollback_started']));
});

test('soak, approval from the Temporal CLI, then contract after the rollback window', async () => {
  const table = await makeOrders(pool, unique('orders'), 3_000);
  const { handle } = await rolloutOnOwnWorker({
    name: unique('contract'),
    table,
    rollbackWindow: '2s',
    steps: [
      centsColumn(1000),
      { kind: 'expose', version: 2 },
      {
        kind: 'soak',
        duration: '3s',
        every: '1s',
        checks: [{ name: 'no nulls', sql: `SELECT count(*) FROM ${table} WHERE amount_cents IS NULL`, expect: { eq: 0 } }],
      },
      { kind: 'approval', timeout: '2m' },
      { kind: 'contract' },
    ],
  });
  await waitForState(handle, 'waiting_approval');
  const soak = (await progressOf(handle)).steps.find((s) => s.kind === 'soak')!;
  expect(soak.state).toBe('completed');
  await temporalCli(handle.workflowId, 'workflow', 'signal', '--name', 'approve', '--input', '{"by":"test-operator"}');
  const out = await outcome(handle);
  expect(out.state).toBe('completed');
  const cat = (await catalogOf(pool, table)) as {
    columns: { attname: string }[];
    triggers: unknown[];
    viewSchemas: { nspname: string }[];
  };
  expect(cat.columns.map((c) => c.attname)).toContain('amount_cents');
  expect(cat.triggers).toEqual([]); // contract removed the dual-write trigger
  expect(cat.viewSchemas.map((v) => v.nspname).some((n) => n.endsWith('_v1'))).toBe(false);
  const approvedBy = await pool.query(`SELECT actor FROM stagefill.events WHERE workflow_id = $1 AND event = 'approved'`, [
    handle.workflowId,
  ]);
  expect(approvedBy.rows[0]?.actor).toBe('test-operator');
});

test('a gate with onFailure: pause holds the rollout (visible by search attribute) until retry', async () => {
  const table = await makeOrders(pool, unique('orders'), 2_000);
  await pool.query(`UPDATE ${table} SET qty = 999 WHERE id = 7`);
  const { handle } = await rolloutOnOwnWorker({
    name: unique('held'),
    table,
    steps: [
      centsColumn(1000),
      {
        kind: 'gate',
        onFailure: 'pause',
        checks: [{ name: 'sane qty', sql: `SELECT count(*) FROM ${table} WHERE qty > 100`, expect: { eq: 0 } }],
      },
    ],
  });
  await waitForState(handle, 'held');
  await waitFor('held in visibility', async () => (await handle.describe()).typedSearchAttributes.get(SA.state) === 'held');
  const held = await progressOf(handle);
  expect(held.lastError).toMatch(/"sane qty" got 1/);
  await pool.query(`UPDATE ${table} SET qty = 1 WHERE id = 7`);
  await temporalCli(handle.workflowId, 'workflow', 'signal', '--name', 'retry');
  expect((await outcome(handle)).state).toBe('completed');
});

test('two rollouts started at once on one table: exactly one runs, the other names it', async () => {
  const table = await makeOrders(pool, unique('orders'), 2_000);
  const { taskQueue } = await ownWorker();
  const spec = (name: string, column: string) => ({
    kind: 'rollout',
    name,
    table,
    steps: [
      { ...centsColumn(1000), column },
      { kind: 'approval', timeout: '20s', onTimeout: 'fail' },
    ],
  });
  const [a, b] = await Promise.all([
    startSpec(client, taskQueue, spec(unique('a'), 'c_a')),
    startSpec(client, taskQueue, spec(unique('b'), 'c_b')),
  ]);
  const outs = await Promise.all([outcome(a.handle), outcome(b.handle)]);
  const refused = outs.filter((o) => o.state === 'failed:RolloutRefused');
  expect(refused).toHaveLength(1);
  const winner = refused[0] === outs[0] ? b.handle : a.handle;
  expect(refused[0]!.failure).toContain(winner.workflowId);
  expect(outs.filter((o) => o.state !== 'failed:RolloutRefused')).toHaveLength(1);
});

test('the worker SIGKILLed three times during a rollback: new workers finish it and the catalog matches', async () => {
  const table = await makeOrders(pool, unique('orders'), 3_000);
  const catalogBefore = await catalogOf(pool, table);
  const sumBefore = await legacyChecksum(pool, table);
  const [, bare] = table.split('.');
  const taskQueue = unique('q');
  let worker = spawnWorker(taskQueue);
  // slow reverts, so the kills land while the rollback is in flight, at different steps
  const slowIndex = (col: string) => ({
    kind: 'sql',
    apply: `CREATE INDEX "${bare}_${col}_idx" ON ${table} (${col})`,
    revert: `SELECT pg_sleep(2); DROP INDEX public."${bare}_${col}_idx"`,
  });
  try {
    const { handle } = await startSpec(client, taskQueue, {
      kind: 'rollout',
      name: unique('killed'),
      table,
      steps: [
        centsColumn(1000),
        slowIndex('qty'),
        slowIndex('customer_id'),
        slowIndex('status'),
        { kind: 'gate', checks: [{ name: 'impossible', sql: 'SELECT 1', expect: { eq: 0 } }] },
      ],
    });
    await waitForState(handle, 'rolling_back', 120_000);
    const reverted = async () => (await progressOf(handle)).steps.filter((st) => st.state === 'reverted').length;
    const kills: number[] = [];
    for (let k = 0; k < 3; k++) {
      const before = await reverted();
      await sleep(300 + Math.floor(Math.random() * 1500));
      worker.kill('SIGKILL');
      await exited(worker);
      kills.push(before);
      worker = spawnWorker(taskQueue);
      // the next kill only once the new worker has moved the rollback on
      const moved = await waitFor(
        'rollback progress after a restart',
        async () => {
          const p = await progressOf(handle);
          return p.state !== 'rolling_back'
            ? 'done'
            : p.steps.filter((st) => st.state === 'reverted').length > before
              ? 'moved'
              : undefined;
        },
        180_000,
      );
      if (moved === 'done') break;
    }
    const out = await outcome(handle);
    process.stderr.write(`[rollback-kill] ${kills.length} SIGKILLs with ${kills.join(', ')} steps reverted at each\n`);
    expect(kills.length).toBeGreaterThanOrEqual(2);
    expect(out.state).toBe('rolled_back');
    expect(await catalogOf(pool, table)).toEqual(catalogBefore);
    expect(await legacyChecksum(pool, table)).toBe(sumBefore);
    recordFacts('worker SIGKILLed during a rollout rollback', {
      kills: kills.length,
      stepsRevertedAtKills: kills.join('/'),
      endState: out.state,
      catalogEqualToBefore: true,
      legacyDataChanged: false,
    });
  } finally {
    worker.kill('SIGKILL');
    await exited(worker);
  }
});

test("cancelling a rollout (the UI's Cancel) rolls it back; an approval timeout does too", async () => {
  const { taskQueue } = await ownWorker();
  const cancelled = await makeOrders(pool, unique('orders'), 2_000);
  const timedOut = await makeOrders(pool, unique('orders'), 2_000);
  const before = { cancelled: await catalogOf(pool, cancelled), timedOut: await catalogOf(pool, timedOut) };
  const steps = (approval: object) => [centsColumn(1000), { kind: 'expose', version: 2 }, { kind: 'approval', ...approval }];
  const a = await startSpec(client, taskQueue, {
    kind: 'rollout',
    name: unique('cancel'),
    table: cancelled,
    steps: steps({ timeout: '10m' }),
  });
  const b = await startSpec(client, taskQueue, {
    kind: 'rollout',
    name: unique('timeout'),
    table: timedOut,
    steps: steps({ timeout: '3s', onTimeout: 'rollback' }),
  });
  await waitForState(a.handle, 'waiting_approval');
  await a.handle.cancel();
  await expect(a.handle.result()).rejects.toThrow();
  expect((await a.handle.describe()).status.name).toBe('CANCELLED');
  expect(await catalogOf(pool, cancelled)).toEqual(before.cancelled);
  const recorded = await pool.query(`SELECT state FROM stagefill.rollouts WHERE workflow_id = $1`, [a.handle.workflowId]);
  expect(recorded.rows[0].state).toBe('cancelled');

  const out = await outcome(b.handle);
  expect(out.state).toBe('rolled_back');
  expect(out.failure).toMatch(/approval "3-approval" timed out/);
  expect(await catalogOf(pool, timedOut)).toEqual(before.timedOut);
});
