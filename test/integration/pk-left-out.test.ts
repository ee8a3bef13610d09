import fs from 'node:fs';
import { unique, pool, client, useStack } from './harness';
import { startSpec, outcome } from './rollout-harness';
import { catalogOf } from '../../chaos/sql';
import { withWorker, rolloutReaches, approveIntoHold, keyToBigint } from './backfill-harness';
import { runCli, cliEnv, tempDir, writeSpec } from './cli-harness';
import { rollbackSignal } from '../../workflows/definitions';
import { snapshotCatalog, compareCatalogs } from '../../db/rollout/catalog';
import { readColumnObjects } from '../../db/rollout/column-objects';
import { rolloutWorkflowId } from '../../core/common/ids';

/**
 * An int -> bigint primary key whose child's referencing column the spec
 * leaves out: `stagefill plan` and `stagefill start` refuse it naming the
 * child's column, its foreign key and the step to add; a key created after
 * `plan` is caught by the expand step; one created after expand holds the
 * contract. Catalogs and data stay as they were.
 */

jest.setTimeout(300_000);
useStack();

const viewPattern = '^stagefill_never$';
let dir: string;
beforeAll(() => (dir = tempDir('stagefill-pk-left-out')));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Tables {
  orders: string;
  items: string;
  o: string;
  i: string;
  fk: string;
}

async function makeTables(opts: { withKey: boolean }): Promise<Tables> {
  const o = unique('lorders');
  const i = `${o}_items`;
  const fk = `${i}_order_fk`;
  await pool.query(`CREATE TABLE public."${o}" (id serial PRIMARY KEY, note text NOT NULL)`);
  await pool.query(`CREATE TABLE public."${i}" (id bigserial PRIMARY KEY, order_id int NOT NULL, qty int NOT NULL)`);
  await pool.query(`INSERT INTO public."${o}" (note) SELECT 'n' || g FROM generate_series(1, 3000) g`);
  await pool.query(`INSERT INTO public."${i}" (order_id, qty) SELECT 1 + g % 3000, g % 7 FROM generate_series(1, 6000) g`);
  const t = { orders: `public.${o}`, items: `public.${i}`, o, i, fk };
  if (opts.withKey) await addKey(t);
  return t;
}

async function addKey(t: Tables): Promise<void> {
  await pool.query(`ALTER TABLE ${t.items} ADD CONSTRAINT "${t.fk}" FOREIGN KEY (order_id) REFERENCES ${t.orders} (id)`);
}

/** orders.id to bigint, and order_items.order_id left out. */
function parentOnly(t: Tables, opts: { approval?: boolean } = {}): Record<string, unknown> {
  return {
    kind: 'rollout',
    name: unique('leftout'),
    table: t.orders,
    steps: [
      {
        id: 'orders-id',
        kind: 'alterColumn',
        column: 'id',
        newType: 'bigint',
        up: 'id::bigint',
        down: 'id::int',
        backfill: { chunkSize: 1000 },
      },
      ...(opts.approval ? [{ id: 'approve', kind: 'approval', timeout: '30m', dependsOn: ['orders-id'] }] : []),
      { id: 'contract-orders', kind: 'contract', dependsOn: [opts.approval ? 'approve' : 'orders-id'] },
    ],
  };
}

async function state(t: Tables) {
  const sum = async (table: string) =>
    (await pool.query(`SELECT md5(string_agg(t::text, ',' ORDER BY id)) AS s FROM ${table} t`)).rows[0].s as string;
  return {
    catalog: { orders: await catalogOf(pool, t.orders), items: await catalogOf(pool, t.items) },
    data: { orders: await sum(t.orders), items: await sum(t.items) },
  };
}

function expectNamesTheFix(text: string, t: Tables): void {
  expect(text).toContain(`${t.items}.order_id is left out`);
  expect(text).toContain(`FOREIGN KEY ${t.fk} of ${t.items}`);
  expect(text).toContain(`references ${t.orders}.id, which step "orders-id" changes from integer to bigint`);
  expect(text).toContain(
    `kind: alterColumn, table: ${t.items}, column: order_id, newType: bigint, up: "order_id::bigint", down: "order_id::int", dependsOn: [orders-id] }`,
  );
}

test('plan and start refuse an int -> bigint key whose child column is left out, naming it, its key and the fix; nothing starts or changes', async () => {
  const t = await makeTables({ withKey: true });
  const before = await state(t);
  const spec = parentOnly(t);
  const file = writeSpec(dir, spec);
  const env = cliEnv(unique('q'));

  const plan = await runCli(['plan', file], env);
  expect(plan.code).toBe(2);
  // the plan is printed, with the refusal in it, and the refusal on stderr
  expect(plan.stdout).toContain(`contract of ${t.orders}.id (step orders-id):`);
  expect(plan.stdout).toContain(`REFUSED  FOREIGN KEY ${t.fk} of ${t.items}:`);
  expect(plan.stderr).toContain('rollout refused: step "orders-id" changes a key without every column referencing it');
  expectNamesTheFix(plan.stderr, t);

  const json = await runCli(['plan', file, '--json'], env);
  expect(json.code).toBe(2);
  const doc = JSON.parse(json.stdout) as { columns: { tables: { leftOut?: { table: string; column: string; foreignKey: string }[] }[] } };
  expect(doc.columns.tables[0]!.leftOut).toEqual([expect.objectContaining({ table: t.items, column: 'order_id', foreignKey: t.fk })]);

  const start = await runCli(['start', file], env);
  expect(start.code).toBe(2);
  expectNamesTheFix(start.stderr, t);
  // no workflow was started
  await expect(client.workflow.getHandle(rolloutWorkflowId(spec.name as string)).describe()).rejects.toThrow(/not found/i);

  // with the child's column changed the same way (and its contract first), plan accepts it
  const fixed = {
    ...spec,
    steps: [
      (spec.steps as unknown[])[0],
      keyToBigint('items-order-id', 'order_id', t.items, { dependsOn: ['orders-id'] }),
      { id: 'contract-items', kind: 'contract', table: t.items, dependsOn: ['items-order-id'] },
      { id: 'contract-orders', kind: 'contract', dependsOn: ['contract-items'] },
    ],
  };
  const ok = await runCli(['plan', writeSpec(dir, fixed)], env);
  expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });
  expect(ok.stdout).not.toContain('REFUSED');

  expect(await state(t)).toEqual(before);
});

test('a key created after plan is caught at the expand step: the rollout refuses before any data moves, both tables as before', async () => {
  const t = await makeTables({ withKey: false });
  const spec = parentOnly(t);
  const plan = await runCli(['plan', writeSpec(dir, spec)], cliEnv(unique('q')));
  expect(plan.code).toBe(0);
  // the child's key arrives between plan and start
  await addKey(t);
  const before = await state(t);
  const snap = { orders: await snapshotCatalog(pool, t.orders, viewPattern), items: await snapshotCatalog(pool, t.items, viewPattern) };
  const out = await withWorker(async (taskQueue) => outcome((await startSpec(client, taskQueue, spec)).handle));
  expect(out.state).not.toBe('completed');
  expectNamesTheFix(JSON.stringify(out) + (out.failure ?? ''), t);
  expect(await state(t)).toEqual(before);
  expect(compareCatalogs(snap.orders, await snapshotCatalog(pool, t.orders, viewPattern))).toEqual([]);
  expect(compareCatalogs(snap.items, await snapshotCatalog(pool, t.items, viewPattern))).toEqual([]);
});

test("a key created after expand holds the parent's contract, naming it; nothing is dropped and a rollback restores both tables", async () => {
  const t = await makeTables({ withKey: false });
  const before = await state(t);
  await withWorker(async (taskQueue) => {
    const { handle } = await startSpec(client, taskQueue, parentOnly(t, { approval: true }));
    await rolloutReaches(handle, 'waiting_approval');
    await addKey(t);
    const keyed = await state(t);
    const p = await approveIntoHold(handle);
    const text = JSON.stringify(p);
    expect(text).toContain(`FOREIGN KEY ${t.fk} of ${t.items}`);
    expect(text).toContain(`${t.items}.order_id is left out`);
    // held: the old key, its column and the new column all still there
    expect((await readColumnObjects(pool, t.orders, 'id')).type).toBe('integer');
    expect((await readColumnObjects(pool, t.orders, 'id_stagefill_new')).exists).toBe(true);
    expect((await state(t)).data).toEqual(keyed.data);
    await handle.signal(rollbackSignal, { by: 'alice', reason: 'change order_items.order_id too' });
    expect((await outcome(handle)).state).toBe('rolled_back');
  });
  await pool.query(`ALTER TABLE ${t.items} DROP CONSTRAINT "${t.fk}"`);
  expect(await state(t)).toEqual(before);
});
