import { WorkflowUpdateFailedError } from '@temporalio/client';
import { setThrottleUpdate, approveUpdate } from '../../workflows/definitions';
import { parseBackfillSpec } from '../../steps/spec';
import { planPartitions } from '../../activities/backfill/partition-plan';
import { createPool } from '../../db/pool';
import { env, spawnWorker, exited, unique, makeCounterTable, waitFor, pool, client, useStack } from './harness';
import { startSpec, outcome } from './rollout-harness';
import { counterSpec } from './backfill-checks';
import { startRun, withWorker } from './backfill-harness';
import { recordFacts } from './report';

jest.setTimeout(180_000);

useStack();

/** A database where the worker is a plain role: its own schema, and ownership of the app's tables through a group. */
async function leastPrivilegeDatabase(secret: string): Promise<{ url: string; adminUrl: string; table: string; role: string }> {
  const id = unique('lp').toLowerCase();
  const db = id;
  const owner = `${id}_owner`;
  const role = `${id}_worker`;
  await pool.query(`CREATE DATABASE "${db}"`);
  const admin = new URL(env().databaseUrl);
  admin.pathname = `/${db}`;
  const adminPool = createPool({ url: admin.toString(), max: 1 });
  try {
    // The grants docs/operations.md lists, and nothing more.
    await adminPool.query(`CREATE ROLE "${owner}" NOLOGIN`);
    await adminPool.query(`CREATE ROLE "${role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '${secret}'`);
    await adminPool.query(`GRANT CREATE ON DATABASE "${db}" TO "${role}"`);
    await adminPool.query(`GRANT "${owner}" TO "${role}"`);
    await adminPool.query(`CREATE SCHEMA app AUTHORIZATION "${owner}"`);
    await adminPool.query(`CREATE TABLE app.orders (id bigint PRIMARY KEY, amount numeric(12,2) NOT NULL)`);
    await adminPool.query(`ALTER TABLE app.orders OWNER TO "${owner}"`);
    await adminPool.query(`INSERT INTO app.orders SELECT g, g * 1.5 FROM generate_series(1, 3000) g`);
  } finally {
    await adminPool.end();
  }
  const url = new URL(env().databaseUrl);
  url.username = role;
  url.password = secret;
  url.pathname = `/${db}`;
  return { url: url.toString(), adminUrl: admin.toString(), table: 'app.orders', role };
}

test('a least-privilege worker runs a rollout, and its password reaches no log, input, history, memo or search attribute', async () => {
  const secret = `pw-${Date.now().toString(36)}-do-not-leak`;
  const lp = await leastPrivilegeDatabase(secret);
  const taskQueue = unique('q');
  const worker = spawnWorker(taskQueue, { DATABASE_URL: lp.url, LOG_LEVEL: 'debug' });
  try {
    const { handle } = await startSpec(client, taskQueue, {
      kind: 'rollout',
      name: unique('lp'),
      table: lp.table,
      steps: [
        { kind: 'addColumn', column: 'amount_cents', type: 'bigint', up: 'round(amount * 100)::bigint', backfill: { chunkSize: 500 } },
        {
          kind: 'gate',
          checks: [{ name: 'no nulls', sql: 'SELECT count(*) FROM app.orders WHERE amount_cents IS NULL', expect: { eq: 0 } }],
        },
        { kind: 'expose', version: 2 },
      ],
    });
    const out = await outcome(handle);
    expect(out.state).toBe('completed');

    const check = createPool({ url: lp.adminUrl, max: 1 });
    try {
      const who = await check.query(`SELECT rolsuper FROM pg_roles WHERE rolname = $1`, [lp.role]);
      expect(who.rows[0].rolsuper).toBe(false);
      const done = await check.query(`SELECT count(*)::int AS n FROM app.orders WHERE amount_cents = round(amount * 100)::bigint`);
      expect(done.rows[0].n).toBe(3000);
      const owner = await check.query(`SELECT nspowner::regrole::text AS o FROM pg_namespace WHERE nspname = 'stagefill'`);
      expect(owner.rows[0].o).toBe(lp.role);
    } finally {
      await check.end();
    }

    // Everything an operator or Temporal stores about the run, the parent and its child backfill.
    const texts: string[] = [worker.output()];
    for await (const wf of client.workflow.list({ query: `StagefillTables = 'app.orders'` })) {
      const h = client.workflow.getHandle(wf.workflowId, wf.runId);
      texts.push(JSON.stringify(await h.fetchHistory()));
      const d = await h.describe();
      texts.push(JSON.stringify(d.memo ?? {}), JSON.stringify(d.typedSearchAttributes.getAll()));
    }
    expect(texts.length).toBeGreaterThan(3);
    const all = texts.join('\n');
    expect(all.length).toBeGreaterThan(1000);
    expect(all).not.toContain(secret);
    recordFacts('secrets never leave DATABASE_URL', {
      bytesSearched: all.length,
      workflowsSearched: (texts.length - 1) / 3,
      secretFound: false,
    });
    expect(worker.output()).toMatch(/rollout .* started/); // the log was really captured
  } finally {
    worker.kill('SIGTERM');
    await exited(worker);
  }
});

test('a hostile table name is quoted as an identifier and runs no SQL', async () => {
  const victim = unique('victim');
  await pool.query(`CREATE TABLE public."${victim}" (id int)`);
  const hostile = `x"; DROP TABLE public."${victim}"; --`;
  await pool.query(`CREATE TABLE public."${hostile.replace(/"/g, '""')}" (id bigint PRIMARY KEY)`);
  await pool.query(`INSERT INTO public."${hostile.replace(/"/g, '""')}" SELECT generate_series(1, 10)`);
  const plan = await planPartitions(pool, { table: `public.${hostile}`, key: 'id', parallelism: 1 });
  expect(plan).toMatchObject({ keyType: 'bigint', isUnique: true, range: { from: '1', to: '11' } });
  const stillThere = await pool.query(`SELECT to_regclass($1) AS t`, [`public."${victim}"`]);
  expect(stillThere.rows[0].t).not.toBeNull();
  // and the spec never lets such a name through in the first place
  expect(() =>
    parseBackfillSpec({
      kind: 'backfill',
      name: 'x',
      table: `public.${hostile}`,
      key: 'id',
      chunkSize: 10,
      transform: 'UPDATE t SET a = 1 WHERE id >= :lo AND id < :hi',
    }),
  ).toThrow(/table must be/);
});

test('updates with bad payloads are rejected by their validators and the run goes on unharmed', async () => {
  const table = await makeCounterTable(pool, unique('t'), 20_000);
  const s = counterSpec(table, { chunkSize: 500, parallelism: 1, throttle: { maxRowsPerSecond: 5000 } });
  await withWorker(async (taskQueue) => {
    const handle = await startRun(taskQueue, s);
    await waitFor('running', async () => ((await handle.query('progress')) as { state: string }).state === 'running');
    for (const bad of [{ chunkSize: -5 }, { chunkSize: 'big' }, { parallelism: 10_000 }, { dropTable: true }]) {
      await expect(handle.executeUpdate(setThrottleUpdate, { args: [bad as never] })).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
    }
    await expect(handle.executeUpdate(approveUpdate, { args: [{ by: 'x' }] })).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
    const ok = await handle.executeUpdate(setThrottleUpdate, { args: [{ maxRowsPerSecond: 50_000 }] });
    expect(ok.maxRowsPerSecond).toBe(50_000);
    const result = await handle.result();
    expect(result.state).toBe('completed');
    const counts = await pool.query(`SELECT n, count(*)::int AS c FROM ${table} GROUP BY n`);
    expect(counts.rows).toEqual([{ n: 1, c: 20_000 }]);
    // rejected updates never reach history
    const history = JSON.stringify(await handle.fetchHistory());
    expect(history).not.toContain('dropTable');
  });
});
