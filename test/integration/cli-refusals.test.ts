import fs from 'node:fs';
import { unique, pool, client, useStack, makeCounterTable } from './harness';
import { startSpec, outcome } from './rollout-harness';
import { withWorker, keyToBigint } from './backfill-harness';
import type { CliResult } from './cli-harness';
import { runCli, cliEnv, tempDir, writeSpec, counterBackfill } from './cli-harness';
import { backfillWorkflowId, rolloutWorkflowId } from '../../core/common/ids';

/**
 * Mistakes refused before any work starts: the real CLI against the real
 * stack, `plan` and `start` exit 2 naming the mistake and its fix, and no
 * workflow is started (its id is unknown to Temporal afterwards).
 */

jest.setTimeout(300_000);
useStack();

let dir: string;
beforeAll(() => (dir = tempDir('stagefill-refusals')));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function expectNoWorkflow(workflowId: string): Promise<void> {
  await expect(client.workflow.getHandle(workflowId).describe()).rejects.toThrow(/not found/i);
}

/** `plan` and `start` of the spec both exit 2 with `message` on stderr; returns both results. */
async function expectRefused(spec: Record<string, unknown>, message: string | RegExp): Promise<{ plan: CliResult; start: CliResult }> {
  const file = writeSpec(dir, spec);
  const env = cliEnv(unique('q'));
  const plan = await runCli(['plan', file], env);
  const start = await runCli(['start', file], env);
  for (const [verb, r] of Object.entries({ plan, start })) {
    expect({ verb, code: r.code }).toEqual({ verb, code: 2 });
    if (typeof message === 'string') expect(r.stderr).toContain(message);
    else expect(r.stderr).toMatch(message);
  }
  return { plan, start };
}

test('a backfill on a missing table or key column: plan and start exit 2 naming it; no workflow starts', async () => {
  const missing = `public.${unique('nosuch')}`;
  const noTable = counterBackfill(missing);
  await expectRefused(noTable, `backfill refused: table: ${missing} does not exist; create it or fix the spec's table`);
  await expectNoWorkflow(backfillWorkflowId(missing, noTable.name as string));

  const table = await makeCounterTable(pool, unique('t'), 100);
  const noKey = counterBackfill(table, { key: 'order_no' });
  const { plan } = await expectRefused(noKey, `backfill refused: key: column "order_no" does not exist on ${table}`);
  expect(plan.stdout).toContain(`backfill ${noKey.name as string} on ${table}`); // the plan is still printed
  await expectNoWorkflow(backfillWorkflowId(table, noKey.name as string));
  expect((await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE n <> 0`)).rows[0].n).toBe(0);

  // the same spec on the right key plans and exits 0
  const ok = await runCli(['plan', writeSpec(dir, counterBackfill(table))], cliEnv(unique('q')));
  expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });
});

test('a rollout on a missing table: plan and start exit 2 naming the table; started anyway, its step names the table, not `up`', async () => {
  const missing = `public.${unique('nosuch')}`;
  const spec = {
    kind: 'rollout',
    name: unique('missing'),
    table: missing,
    steps: [{ kind: 'addColumn', column: 'amount_cents', type: 'bigint', up: 'round(amount * 100)::bigint' }],
  };
  const { plan } = await expectRefused(
    spec,
    `rollout refused: table ${missing} does not exist (step "1-addColumn" works on it): create it first, or fix the spec's table`,
  );
  expect(plan.stdout).toContain(`REFUSED  table ${missing} does not exist`);
  await expectNoWorkflow(rolloutWorkflowId(spec.name));

  // past the CLI (the library's startRollout does not read the tables): the step's error names the table
  const out = await withWorker(async (taskQueue) => outcome((await startSpec(client, taskQueue, spec)).handle));
  expect(out.state).toBe('rolled_back');
  const text = JSON.stringify(out);
  expect(text).toContain(`table ${missing} does not exist; create it first`);
  expect(text).not.toContain('is not an expression over the rows');
});

test("int -> bigint: a child's column changed without a contract step of its own is refused at plan and start, naming the contract to add", async () => {
  const o = unique('rorders');
  const orders = `public.${o}`;
  const items = `public.${o}_items`;
  const fk = `${o}_items_fk`;
  await pool.query(`CREATE TABLE ${orders} (id serial PRIMARY KEY, note text)`);
  await pool.query(`CREATE TABLE ${items} (id bigserial PRIMARY KEY, order_id int NOT NULL)`);
  await pool.query(`ALTER TABLE ${items} ADD CONSTRAINT "${fk}" FOREIGN KEY (order_id) REFERENCES ${orders} (id)`);
  const spec = {
    kind: 'rollout',
    name: unique('nochildcontract'),
    table: orders,
    steps: [
      keyToBigint('orders-id', 'id', orders, {}),
      keyToBigint('items-order-id', 'order_id', items, { dependsOn: ['orders-id'] }),
      { id: 'contract-orders', kind: 'contract', dependsOn: ['items-order-id'] },
    ],
  };
  const { plan } = await expectRefused(
    spec,
    `step "items-order-id" changes ${items}.order_id, whose FOREIGN KEY ${fk} references ${orders}.id`,
  );
  expect(plan.stderr).toContain(`the rollout has no contract step for ${items}`);
  expect(plan.stderr).toContain(`kind: contract, table: ${items} } and make step "contract-orders" dependsOn it`);
  expect(plan.stdout).toContain(`REFUSED  FOREIGN KEY ${fk} of ${items}`);
  await expectNoWorkflow(rolloutWorkflowId(spec.name));
  // nothing was changed
  expect(
    (await pool.query(`SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = $1::regclass AND attname LIKE '%stagefill%'`, [orders]))
      .rows[0].n,
  ).toBe(0);

  // with the child's contract, the contract of orders after it: plan accepts it
  const fixed = {
    ...spec,
    steps: [
      ...spec.steps.slice(0, 2),
      { id: 'contract-items', kind: 'contract', table: items, dependsOn: ['items-order-id'] },
      { id: 'contract-orders', kind: 'contract', dependsOn: ['contract-items'] },
    ],
  };
  const ok = await runCli(['plan', writeSpec(dir, fixed)], cliEnv(unique('q')));
  expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });
});

test('two alterColumns of one column: refused with the field path and the fix; no workflow', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10);
  const spec = {
    kind: 'rollout',
    name: unique('twice'),
    table,
    steps: [
      { id: 'v-bigint', kind: 'alterColumn', column: 'v', newType: 'bigint', up: 'v::bigint', down: 'v::int' },
      { id: 'v-numeric', kind: 'alterColumn', column: 'v', newType: 'numeric', up: 'v::numeric', down: 'v::int' },
    ],
  };
  await expectRefused(spec, `steps.1.column: step "v-numeric" alters ${table}.v, which step "v-bigint" already alters`);
  await expectNoWorkflow(rolloutWorkflowId(spec.name));
});

test('a dropColumn of a column an earlier alterColumn of the rollout changes: refused naming both steps and the fix; no workflow; the dropColumn alone is accepted', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10);
  const alter = { id: 'v-bigint', kind: 'alterColumn', column: 'v', newType: 'bigint', up: 'v::bigint', down: 'v::int' };
  const spec = {
    kind: 'rollout',
    name: unique('altergone'),
    table,
    steps: [alter, { id: 'v-gone', kind: 'dropColumn', column: 'v' }, { kind: 'contract' }],
  };
  const { plan } = await expectRefused(spec, `steps.1.column: step "v-gone" drops ${table}.v, which step "v-bigint" alters (v to bigint)`);
  expect(plan.stderr).toContain('Fix: to drop the column, remove step "v-bigint"');
  expect(plan.stderr).toContain("or drop the altered column in a rollout of its own after this one's contract");
  await expectNoWorkflow(rolloutWorkflowId(spec.name));
  // nothing was changed
  expect(
    (await pool.query(`SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = $1::regclass AND attname LIKE '%stagefill%'`, [table]))
      .rows[0].n,
  ).toBe(0);

  // the fix it names: the column dropped without altering it first
  const fixed = { ...spec, steps: spec.steps.slice(1) };
  const ok = await runCli(['plan', writeSpec(dir, fixed)], cliEnv(unique('q')));
  expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });
});

test('an index that cannot take the new type is found at plan and start, naming the index and the fix', async () => {
  const t = unique('codes');
  const table = `public.${t}`;
  await pool.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, code text NOT NULL)`);
  await pool.query(`INSERT INTO ${table} SELECT g, g::text FROM generate_series(1, 100) g`);
  await pool.query(`CREATE INDEX "${t}_code_prefix" ON ${table} (code text_pattern_ops)`);
  await pool.query(`CREATE INDEX "${t}_code" ON ${table} (code)`);
  const spec = {
    kind: 'rollout',
    name: unique('codeint'),
    table,
    steps: [
      { id: 'code-int', kind: 'alterColumn', column: 'code', newType: 'integer', up: 'code::int', down: 'code::text' },
      { kind: 'contract' },
    ],
  };
  const { plan } = await expectRefused(spec, `index ${t}_code_prefix of ${table} cannot be built over code as integer`);
  expect(plan.stderr).toContain('text_pattern_ops');
  expect(plan.stderr).toContain('drop it in a sql step before the alterColumn');
  // the plain btree index follows the new type: only the one that cannot is named
  expect(plan.stderr).not.toContain(`index ${t}_code of`);
  await expectNoWorkflow(rolloutWorkflowId(spec.name));
  // the probe left nothing behind
  expect((await pool.query(`SELECT count(*)::int AS n FROM pg_class WHERE relname = 'stagefill_type_probe'`)).rows[0].n).toBe(0);
});
