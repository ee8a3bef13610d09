// Over 400 lines for now: the rollout-integrity branch is rewriting its alterColumn cases; split it per step-kind group
// (column kinds, constraints, expose/contract, the step runner) once that lands.
import { Pool, PoolClient } from 'pg';
import { ApplicationFailure } from '@temporalio/common';
import { createRolloutActivities, StepInput, RolloutActivities } from '../../activities/rollout';
import { createStepRunner } from '../../activities/steps';
import type { StepActions } from '../../steps/types';
import { parseRolloutSpec, RolloutSpec, RolloutStep, RolloutSpecInput } from '../../spec';
import { planRollout, viewSchemaName } from '../../plan/describe';
import { normalizeGraph } from '../../plan/graph';
import { bindRange } from '../../db/backfills';
import { rolloutAudit } from '../../db/rollout-audit';
import { snapshotCatalog } from '../../db/catalog';
import { openPool, unique, makeCounterTable, testLogger } from './harness';

/**
 * The rollout activities called as plain functions against the real Postgres:
 * each step kind forward and back, exactly once, with the catalog compared
 * before and after. The workflow tests drive the same functions through Temporal.
 */

jest.setTimeout(120_000);

let pool: Pool;
let acts: RolloutActivities;

beforeAll(async () => {
  pool = await openPool();
  acts = createRolloutActivities({ pool, logger: testLogger });
});
afterAll(async () => {
  await pool.end();
});

interface Started {
  spec: RolloutSpec;
  workflowId: string;
  rolloutId: number;
  baselines: Record<string, string | null>;
  input(stepId: string, table?: string): StepInput;
}

/** A rollout over `table` with `steps`, begun as the workflow would begin it. */
async function begin(
  table: string,
  steps: RolloutSpecInput['steps'],
  opts: { tables?: string[]; workflowId?: string } = {},
): Promise<Started> {
  const spec = parseRolloutSpec({ kind: 'rollout', name: unique('ro'), table, steps });
  const graph = normalizeGraph(spec.steps, spec.table);
  const allSteps = graph.map((g, n) => ({ id: g.id, table: g.table, step: spec.steps[n] }));
  const workflowId = opts.workflowId ?? unique('stagefill-rollout:wf');
  const plan = planRollout(spec);
  const r = await acts.beginRollout({
    workflowId,
    name: spec.name,
    spec,
    tables: opts.tables ?? plan.tables,
    plan: plan.steps,
    actor: 'test',
  });
  return {
    spec,
    workflowId,
    rolloutId: r.rolloutId,
    baselines: r.baselines,
    input: (stepId, overrideTable) => {
      const s = allSteps.find((x) => x.id === stepId);
      if (!s) throw new Error(`no step ${stepId}`);
      return {
        rolloutId: r.rolloutId,
        workflowId,
        rolloutName: spec.name,
        stepId,
        step: s.step,
        table: overrideTable ?? s.table,
        allSteps,
        actor: 'test',
      };
    },
  };
}

async function expectCatalogUnchanged(r: Started): Promise<void> {
  const diff = await acts.catalogDiff({ rolloutId: r.rolloutId });
  expect(diff.flatMap((d) => d.diff)).toEqual([]);
  expect(diff.every((d) => d.equal)).toBe(true);
}

async function expectFailure(p: Promise<unknown>, type: string, ...messageParts: string[]): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  const f = err as ApplicationFailure;
  expect(f.type).toBe(type);
  expect(f.nonRetryable).toBe(true);
  for (const part of messageParts) expect(f.message).toContain(part);
  return f;
}

/** Apply, apply again (a no-op), revert, revert again (a no-op); `between` runs while applied. */
async function roundTrip(r: Started, stepId: string, between?: () => Promise<void>): Promise<void> {
  const first = await acts.applyStep(r.input(stepId));
  expect(first.alreadyDone).toBe(false);
  expect((await acts.applyStep(r.input(stepId))).alreadyDone).toBe(true);
  await between?.();
  expect(await acts.revertStep(r.input(stepId))).toEqual({ alreadyReverted: false });
  expect(await acts.revertStep(r.input(stepId))).toEqual({ alreadyReverted: true });
}

async function columnsOf(table: string): Promise<{ name: string; type: string; notNull: boolean }[]> {
  const [schema, name] = table.split('.');
  const { rows } = await pool.query(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull"
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [schema, name],
  );
  return rows;
}

async function stagefillFunctions(): Promise<string[]> {
  const { rows } = await pool.query(
    `SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'stagefill'`,
  );
  return rows.map((x) => x.proname as string);
}

test('addColumn: the trigger computes the column on every insert and update, the backfill fills old rows, revert removes it all', async () => {
  const table = await makeCounterTable(pool, unique('t'), 1000);
  const r = await begin(table, [
    { kind: 'addColumn', id: 'add', column: 'v2', type: 'bigint', up: 'v * 2 + n', backfill: { chunkSize: 250 } },
  ]);
  const functionsBefore = await stagefillFunctions();

  const applied = await acts.applyStep(r.input('add'));
  expect(applied.alreadyDone).toBe(false);
  const bf = applied.backfill!;
  expect(bf).toMatchObject({ kind: 'backfill', name: `${r.spec.name}.add`, table, key: 'id', chunkSize: 250, parallelism: 2 });
  // the backfill engine runs this per chunk; one range over everything does the same here
  await pool.query(bindRange(bf.transform, 'bigint'), ['0', '1000000']);

  await pool.query(`INSERT INTO ${table} (id, n, v) VALUES (5000, 3, 10)`);
  await pool.query(`UPDATE ${table} SET n = 7 WHERE id = 1`);
  await pool.query(`UPDATE ${table} SET v2 = -1 WHERE id = 2`); // a writer cannot make it disagree with up
  const { rows: wrong } = await pool.query(`SELECT count(*)::int AS c FROM ${table} WHERE v2 IS DISTINCT FROM v * 2 + n`);
  expect(wrong[0].c).toBe(0);
  expect((await pool.query(`SELECT v2 FROM ${table} WHERE id = 5000`)).rows[0].v2).toBe('23');

  const again = await acts.applyStep(r.input('add'));
  expect(again).toMatchObject({ alreadyDone: true, backfill: { transform: bf.transform } });

  expect(await acts.revertStep(r.input('add'))).toEqual({ alreadyReverted: false });
  expect(await acts.revertStep(r.input('add'))).toEqual({ alreadyReverted: true });
  expect((await columnsOf(table)).map((c) => c.name)).toEqual(['id', 'n', 'v']);
  expect(await stagefillFunctions()).toEqual(functionsBefore);
  await expectCatalogUnchanged(r);
});

test('addColumn with a bad up expression fails without retry, names the step, and changes nothing', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10);
  const r = await begin(table, [{ kind: 'addColumn', id: 'bad-up', column: 'v2', type: 'int', up: 'no_such_column + 1' }]);
  await expectFailure(acts.applyStep(r.input('bad-up')), 'StepSqlError', 'bad-up', 'no_such_column');
  expect((await columnsOf(table)).map((c) => c.name)).toEqual(['id', 'n', 'v']);
  expect(await acts.revertStep(r.input('bad-up'))).toEqual({ alreadyReverted: true });
  await expectCatalogUnchanged(r);
});

test('alterColumn: writers of the old and of the new column both keep the other in sync; the backfill leaves legacy data alone', async () => {
  const table = await makeCounterTable(pool, unique('t'), 100);
  const r = await begin(table, [
    {
      kind: 'alterColumn',
      id: 'retype',
      column: 'v',
      newName: 'v_text',
      newType: 'text',
      up: "'#' || v::text",
      down: "ltrim(v_text, '#')::int",
    },
    { kind: 'alterColumn', id: 'widen', column: 'n', newType: 'bigint', up: 'n * 10', down: '(n_stagefill_new / 10)::int' },
  ]);
  await roundTrip(r, 'retype', async () => {
    const applied = await acts.applyStep(r.input('retype'));
    await pool.query(bindRange(applied.backfill!.transform, 'bigint'), ['0', '1000000']);
    expect((await pool.query(`SELECT count(*)::int AS c FROM ${table} WHERE v_text IS DISTINCT FROM '#' || v::text`)).rows[0].c).toBe(0);
    expect((await pool.query(`SELECT count(*)::int AS c FROM ${table} WHERE v <> id`)).rows[0].c).toBe(0);

    await pool.query(`INSERT INTO ${table} (id, v) VALUES (1001, 41)`); // old shape
    await pool.query(`INSERT INTO ${table} (id, v_text) VALUES (1002, '#42')`); // new shape
    await pool.query(`UPDATE ${table} SET v = 43 WHERE id = 1`);
    await pool.query(`UPDATE ${table} SET v_text = '#44' WHERE id = 2`);
    const { rows } = await pool.query(`SELECT id::int, v, v_text FROM ${table} WHERE id IN (1, 2, 1001, 1002) ORDER BY id`);
    expect(rows).toEqual([
      { id: 1, v: 43, v_text: '#43' },
      { id: 2, v: 44, v_text: '#44' },
      { id: 1001, v: 41, v_text: '#41' },
      { id: 1002, v: 42, v_text: '#42' },
    ]);
  });

  // without newName the new column is <column>_stagefill_new, of the column's type unless newType says otherwise
  await roundTrip(r, 'widen', async () => {
    expect((await columnsOf(table)).find((c) => c.name === 'n_stagefill_new')?.type).toBe('bigint');
    await pool.query(`UPDATE ${table} SET n_stagefill_new = 70 WHERE id = 3`);
    expect((await pool.query(`SELECT n FROM ${table} WHERE id = 3`)).rows[0].n).toBe(7);
  });
  await expectCatalogUnchanged(r);
});

test('setNotNull: NOT VALID check, VALIDATE, SET NOT NULL, each once; revert restores the nullable column', async () => {
  const table = await makeCounterTable(pool, unique('t'), 200);
  const r = await begin(table, [{ kind: 'setNotNull', id: 'nn', column: 'v' }]);
  await roundTrip(r, 'nn', async () => {
    expect((await columnsOf(table)).find((c) => c.name === 'v')?.notNull).toBe(true);
    // the helper check is gone once SET NOT NULL holds
    const { rows } = await pool.query(`SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'c'`, [table]);
    expect(rows).toEqual([]);
  });
  expect((await columnsOf(table)).find((c) => c.name === 'v')?.notNull).toBe(false);
  await expectCatalogUnchanged(r);
});

test('setNotNull over NULLs fails without retry and leaves no NOT VALID constraint behind', async () => {
  const table = await makeCounterTable(pool, unique('t'), 50);
  await pool.query(`UPDATE ${table} SET v = NULL WHERE id = 7`);
  const r = await begin(table, [{ kind: 'setNotNull', id: 'nn', column: 'v' }]);
  await expectFailure(acts.applyStep(r.input('nn')), 'StepValidationFailed', 'nn', 'NULL');
  await expectCatalogUnchanged(r);
  expect(await acts.revertStep(r.input('nn'))).toEqual({ alreadyReverted: true });
});

test('setNotNull on a mixed-case column: the helper check quotes it', async () => {
  const table = await makeCounterTable(pool, unique('t'), 20);
  await pool.query(`ALTER TABLE ${table} ADD COLUMN "Amount" int DEFAULT 1`);
  const r = await begin(table, [{ kind: 'setNotNull', id: 'nn', column: 'Amount' }]);
  await roundTrip(r, 'nn', async () => {
    expect((await columnsOf(table)).find((c) => c.name === 'Amount')?.notNull).toBe(true);
  });
  expect((await columnsOf(table)).find((c) => c.name === 'Amount')?.notNull).toBe(false);
  await expectCatalogUnchanged(r);
});

test('a retried apply resumes after the last finished phase: a phase that committed never runs again', async () => {
  const table = await makeCounterTable(pool, unique('t'), 20);
  const r = await begin(table, [{ kind: 'addCheck', id: 'chk', name: 'v_nonneg', expression: 'v >= 0' }]);
  // as if a worker died right after the first phase committed: the NOT VALID constraint and its phase record
  await pool.query(`ALTER TABLE ${table} ADD CONSTRAINT v_nonneg CHECK (v >= 0) NOT VALID`);
  await pool.query(
    `UPDATE stagefill.rollout_steps SET phase = 'not_valid', detail = '{"constraint":"v_nonneg"}' WHERE rollout_id = $1 AND step_id = 'chk'`,
    [r.rolloutId],
  );
  // running ADD CONSTRAINT again would fail (it exists): only VALIDATE runs
  const applied = await acts.applyStep(r.input('chk'));
  expect(applied).toMatchObject({ alreadyDone: false, detail: { constraint: 'v_nonneg' } });
  const { rows } = await pool.query(`SELECT convalidated FROM pg_constraint WHERE conrelid = $1::regclass AND conname = 'v_nonneg'`, [
    table,
  ]);
  expect(rows).toEqual([{ convalidated: true }]);
  const { rows: step } = await pool.query(`SELECT effect, phase FROM stagefill.rollout_steps WHERE rollout_id = $1 AND step_id = 'chk'`, [
    r.rolloutId,
  ]);
  expect(step).toEqual([{ effect: 'applied', phase: 'validated' }]);
  expect(await acts.applyStep(r.input('chk'))).toMatchObject({ alreadyDone: true });
  await acts.revertStep(r.input('chk'));
  await expectCatalogUnchanged(r);
});

test('a phase outside a transaction (CREATE INDEX CONCURRENTLY) runs on a plain connection under the lock timeout, once even with two attempts at once, and the next phase resumes after it', async () => {
  const table = await makeCounterTable(pool, unique('t'), 50);
  const index = unique('ix').replace(/[^a-z0-9_]/gi, '_');
  const runs: string[] = [];
  // a kind of the test's own, run by the real runner: the shape a concurrent index build takes
  const actions: StepActions<{ kind: string }> = {
    phases: [
      {
        name: 'built',
        transactional: false,
        async run(ctx) {
          runs.push('built');
          const { rows } = await ctx.db.query(`SHOW lock_timeout`);
          // refused inside a transaction block: this succeeding is the proof it runs outside one
          await ctx.db.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${index} ON ${table} (v)`);
          return { index, lockTimeout: rows[0].lock_timeout };
        },
      },
      {
        name: 'noted',
        transactional: true,
        async run(ctx) {
          runs.push('noted');
          return { sawIndex: ctx.detail.index };
        },
      },
    ],
    async revert(ctx) {
      await ctx.db.query(`DROP INDEX CONCURRENTLY IF EXISTS ${String(ctx.detail.index)}`);
    },
    isRevertOutsideTransaction: true,
  };
  const runner = createStepRunner({ pool, logger: testLogger }, () => actions);
  const r = await begin(table, [{ kind: 'sql', id: 'ix', apply: 'select 1', revert: 'select 1', lockTimeoutMs: 12345 }]);
  // two attempts at once (a retry racing a worker thought dead): each phase runs once between them
  const both = await Promise.all([runner.applyStep(r.input('ix')), runner.applyStep(r.input('ix'))]);
  expect(both.map((a) => a.alreadyDone).sort()).toEqual([false, true]);
  expect(both.find((a) => !a.alreadyDone)).toMatchObject({ detail: { index, lockTimeout: '12345ms', sawIndex: index } });
  expect(await runner.applyStep(r.input('ix'))).toMatchObject({ alreadyDone: true });
  expect(runs).toEqual(['built', 'noted']);
  const { rows } = await pool.query(`SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1`, [
    index,
  ]);
  expect(rows).toEqual([{ indisvalid: true }]);
  await runner.revertStep(r.input('ix'));
  expect((await pool.query(`SELECT 1 FROM pg_class WHERE relname = $1`, [index])).rows).toEqual([]);
  await expectCatalogUnchanged(r);
});

test('addCheck: validated, enforced on new writes, and dropped on revert', async () => {
  const table = await makeCounterTable(pool, unique('t'), 100);
  const r = await begin(table, [{ kind: 'addCheck', id: 'chk', name: 'n_not_negative', expression: 'n >= 0' }]);
  await roundTrip(r, 'chk', async () => {
    const { rows } = await pool.query(
      `SELECT convalidated FROM pg_constraint WHERE conrelid = $1::regclass AND conname = 'n_not_negative'`,
      [table],
    );
    expect(rows).toEqual([{ convalidated: true }]);
    await expect(pool.query(`INSERT INTO ${table} (id, n) VALUES (9999, -1)`)).rejects.toThrow(/n_not_negative/);
  });
  await pool.query(`INSERT INTO ${table} (id, n) VALUES (9999, -1)`);
  await expectCatalogUnchanged(r);
});

test('sql: apply and revert run as written, once each; an error in them fails without retry naming the step', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10);
  const index = unique('ix');
  const r = await begin(table, [
    { kind: 'sql', id: 'ix', apply: `CREATE INDEX "${index}" ON ${table} (v)`, revert: `DROP INDEX public."${index}"` },
    { kind: 'sql', id: 'broken', apply: 'ALTER TABLE no_such_table ADD COLUMN x int', revert: 'SELECT 1' },
  ]);
  await roundTrip(r, 'ix', async () => {
    expect((await pool.query(`SELECT 1 FROM pg_indexes WHERE indexname = $1`, [index])).rowCount).toBe(1);
  });
  await expectFailure(acts.applyStep(r.input('broken')), 'StepSqlError', 'broken', 'no_such_table');
  expect(await acts.revertStep(r.input('broken'))).toEqual({ alreadyReverted: true });
  await expectCatalogUnchanged(r);
});

test('expose: new and legacy view versions both readable, the flag set, and revert restores the previous flag', async () => {
  const table = await makeCounterTable(pool, unique('t'), 20);
  await pool.query(`INSERT INTO stagefill.read_paths (table_name, version, percent, workflow_id) VALUES ($1, 1, 100, 'earlier')`, [table]);
  const r = await begin(table, [
    { kind: 'addColumn', id: 'add', column: 'v2', type: 'int', up: 'v * 2' },
    { kind: 'alterColumn', id: 'rename', column: 'v', newName: 'value', up: 'v', down: 'value' },
    { kind: 'expose', id: 'v2', version: 2 },
    { kind: 'contract', id: 'contract', drops: ['n'] },
  ]);
  const added = await acts.applyStep(r.input('add'));
  await pool.query(bindRange(added.backfill!.transform, 'bigint'), ['0', '1000']);
  const renamed = await acts.applyStep(r.input('rename'));
  await pool.query(bindRange(renamed.backfill!.transform, 'bigint'), ['0', '1000']);

  const name = table.split('.')[1];
  const v2 = `"${viewSchemaName(table, 2)}"."${name}"`;
  const v1 = `"${viewSchemaName(table, 1)}"."${name}"`;
  await roundTrip(r, 'v2', async () => {
    const applied = await acts.applyStep(r.input('v2'));
    expect(applied.detail).toMatchObject({
      viewSchema: viewSchemaName(table, 2),
      createdSchemas: [viewSchemaName(table, 2), viewSchemaName(table, 1)],
    });
    expect(Number.isNaN(Date.parse(String(applied.detail!.exposedAt)))).toBe(false);
    // new shape: the renamed column in the old one's place, the added column, no column the contract drops
    const newRows = await pool.query(`SELECT * FROM ${v2} ORDER BY id LIMIT 2`);
    expect(newRows.fields.map((f) => f.name)).toEqual(['id', 'value', 'v2']);
    expect(newRows.rows[1]).toEqual({ id: '2', value: 2, v2: 4 });
    const oldRows = await pool.query(`SELECT * FROM ${v1} ORDER BY id LIMIT 2`);
    expect(oldRows.fields.map((f) => f.name)).toEqual(['id', 'n', 'v']);
    // a write through either version shows in both
    await pool.query(`UPDATE ${v1} SET v = 500 WHERE id = 3`);
    await pool.query(`INSERT INTO ${v2} (id, value) VALUES (77, 9)`);
    expect((await pool.query(`SELECT value, v2 FROM ${v2} WHERE id = 3`)).rows[0]).toEqual({ value: 500, v2: 1000 });
    expect((await pool.query(`SELECT v FROM ${v1} WHERE id = 77`)).rows[0]).toEqual({ v: 9 });
    const flag = await pool.query(
      `SELECT version, percent, previous_version, workflow_id FROM stagefill.read_paths WHERE table_name = $1`,
      [table],
    );
    expect(flag.rows).toEqual([{ version: 2, percent: 100, previous_version: 1, workflow_id: r.workflowId }]);
  });
  const flag = await pool.query(`SELECT version, percent, previous_version, workflow_id FROM stagefill.read_paths WHERE table_name = $1`, [
    table,
  ]);
  expect(flag.rows).toEqual([{ version: 1, percent: 100, previous_version: null, workflow_id: 'earlier' }]);
  expect(
    (await pool.query(`SELECT 1 FROM pg_namespace WHERE nspname = ANY($1)`, [[viewSchemaName(table, 1), viewSchemaName(table, 2)]]))
      .rowCount,
  ).toBe(0);

  await acts.revertStep(r.input('rename'));
  await acts.revertStep(r.input('add'));
  await expectCatalogUnchanged(r);
});

test('contract: drops the old shape for good, keeps the new read path, and refuses to be reverted', async () => {
  const table = await makeCounterTable(pool, unique('t'), 20);
  const r = await begin(table, [
    { kind: 'addColumn', id: 'add', column: 'v2', type: 'int', up: 'v * 2' },
    { kind: 'alterColumn', id: 'widen', column: 'v', newType: 'bigint', up: 'v::bigint', down: 'v_stagefill_new::int' },
    { kind: 'expose', id: 'expose', version: 2 },
    { kind: 'contract', id: 'contract', drops: ['n'] },
  ]);
  for (const id of ['add', 'widen']) {
    const a = await acts.applyStep(r.input(id));
    await pool.query(bindRange(a.backfill!.transform, 'bigint'), ['0', '1000']);
  }
  await acts.applyStep(r.input('expose'));
  const functionsApplied = await stagefillFunctions();

  const c = await acts.applyStep(r.input('contract'));
  expect(c.alreadyDone).toBe(false);
  expect(c.detail).toMatchObject({
    droppedSchemas: [viewSchemaName(table, 1)],
    droppedColumns: ['n', 'v'],
    renamed: ['v_stagefill_new -> v'],
  });
  expect(await columnsOf(table)).toEqual([
    { name: 'id', type: 'bigint', notNull: true },
    { name: 'v2', type: 'integer', notNull: false },
    { name: 'v', type: 'bigint', notNull: false },
  ]);
  const triggers = await pool.query(`SELECT tgname FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal`, [table]);
  expect(triggers.rows).toEqual([]);
  expect((await stagefillFunctions()).length).toBe(functionsApplied.length - 2);
  const name = table.split('.')[1];
  const rows = await pool.query(`SELECT * FROM "${viewSchemaName(table, 2)}"."${name}" WHERE id = 5`);
  expect(rows.rows).toEqual([{ id: '5', v: '5', v2: 10 }]);
  expect((await pool.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [viewSchemaName(table, 1)])).rowCount).toBe(0);

  expect((await acts.applyStep(r.input('contract'))).alreadyDone).toBe(true);
  await expectFailure(acts.revertStep(r.input('contract')), 'Irreversible', 'contract', 'cannot be reverted');
});

test('backfill, gate, soak and approval steps only record their revert', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10);
  const r = await begin(table, [
    { kind: 'backfill', id: 'bf', transform: `UPDATE ${table} SET n = n + 1 WHERE id >= :lo AND id < :hi` },
    { kind: 'gate', id: 'gate', checks: [{ name: 'rows', sql: `SELECT count(*) FROM ${table}`, expect: { eq: 10 } }] },
    { kind: 'approval', id: 'ok' },
  ]);
  for (const id of ['bf', 'gate', 'ok']) {
    expect(await acts.revertStep(r.input(id))).toEqual({ alreadyReverted: false });
    expect(await acts.revertStep(r.input(id))).toEqual({ alreadyReverted: true });
  }
  const { rows } = await pool.query(`SELECT step_id, state, effect FROM stagefill.rollout_steps WHERE rollout_id = $1 ORDER BY step_id`, [
    r.rolloutId,
  ]);
  expect(rows).toEqual([
    { step_id: 'bf', state: 'reverted', effect: 'reverted' },
    { step_id: 'gate', state: 'reverted', effect: 'reverted' },
    { step_id: 'ok', state: 'reverted', effect: 'reverted' },
  ]);
  await expectCatalogUnchanged(r);
});

test('runChecks: bounds, unchanged-since-start baselines and broken queries, every result recorded', async () => {
  const table = await makeCounterTable(pool, unique('t'), 100);
  const r = await begin(table, [
    {
      kind: 'gate',
      id: 'gate',
      checks: [
        { name: 'rows', sql: `SELECT count(*) FROM ${table}`, unchanged: true },
        { name: 'rows within 5', sql: `SELECT count(*) FROM ${table}`, unchanged: true, tolerance: 5 },
        { name: 'no negatives', sql: `SELECT count(*) FROM ${table} WHERE n < 0`, expect: { eq: 0 } },
        { name: 'broken', sql: 'SELECT no_such_column FROM pg_class', expect: { eq: 0 } },
        { name: 'no writes', sql: `WITH d AS (DELETE FROM ${table} RETURNING 1) SELECT count(*) FROM d`, expect: { eq: 0 } },
      ],
    },
  ]);
  expect(r.baselines).toEqual({ 'gate/rows': '100', 'gate/rows within 5': '100' });
  await pool.query(`INSERT INTO ${table} (id, n) SELECT g, -1 FROM generate_series(1001, 1002) g`);

  const results = await acts.runChecks({
    rolloutId: r.rolloutId,
    workflowId: r.workflowId,
    stepId: 'gate',
    table,
    checks: (r.spec.steps[0] as Extract<RolloutStep, { kind: 'gate' }>).checks,
    baselines: r.baselines,
    attempt: 1,
  });
  const byName = Object.fromEntries(results.map((x) => [x.name, x]));
  expect(byName['rows']).toMatchObject({ ok: false, value: '102', expected: 'unchanged from 100', deviation: 2 });
  expect(byName['rows within 5']).toMatchObject({ ok: true, value: '102', deviation: 0 });
  expect(byName['no negatives']).toMatchObject({ ok: false, value: '2', expected: '= 0', deviation: 2 });
  expect(byName['broken']).toMatchObject({ ok: false, value: null });
  expect(byName['broken'].error).toContain('no_such_column');
  expect(byName['no writes'].ok).toBe(false);
  expect(byName['no writes'].error).toMatch(/read-only/);
  expect((await pool.query(`SELECT count(*)::int AS c FROM ${table}`)).rows[0].c).toBe(102);

  const recorded = await pool.query(
    `SELECT check_name, ok, value FROM stagefill.gate_results WHERE rollout_id = $1 AND step_id = 'gate' AND attempt = 1 ORDER BY check_name`,
    [r.rolloutId],
  );
  expect(recorded.rows.map((x) => [x.check_name, x.ok])).toEqual([
    ['broken', false],
    ['no negatives', false],
    ['no writes', false],
    ['rows', false],
    ['rows within 5', true],
  ]);
});

test('one rollout per table: another workflow is refused with TableBusy naming the holder; the same workflow resumes; finish releases', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10);
  const other = await makeCounterTable(pool, unique('t'), 10);
  const steps = [{ kind: 'addCheck' as const, id: 'chk', name: 'n_ok', expression: 'n >= 0' }];
  const a = await begin(table, steps);
  await expectFailure(
    begin(other, steps, { tables: [other, table] }),
    'TableBusy',
    `table ${table} has a rollout running: ${a.spec.name} (${a.workflowId})`,
    'wait for it to finish or roll it back',
  );
  // the refused start took nothing, not even the free table
  expect((await pool.query(`SELECT 1 FROM stagefill.table_locks WHERE table_name = $1`, [other])).rowCount).toBe(0);

  const again = await acts.beginRollout({ workflowId: a.workflowId, name: a.spec.name, spec: a.spec, tables: [table], plan: [] });
  expect(again).toEqual({ rolloutId: a.rolloutId, baselines: {}, resumed: true });

  await acts.applyStep(a.input('chk'));
  await acts.revertStep(a.input('chk'));
  const finished = await acts.finishRollout({
    rolloutId: a.rolloutId,
    workflowId: a.workflowId,
    state: 'rolled_back',
    reason: 'test',
    actor: 'test',
  });
  expect(finished.catalog).toEqual([{ table, equal: true, diff: [] }]);
  expect(await acts.finishRollout({ rolloutId: a.rolloutId, workflowId: a.workflowId, state: 'rolled_back' })).toEqual(finished);

  const b = await begin(other, steps, { tables: [other, table] });
  expect(b.rolloutId).not.toBe(a.rolloutId);

  const audit = await rolloutAudit(pool, a.workflowId);
  expect(audit?.rollout).toMatchObject({ state: 'rolled_back', reason: 'test', tables: [table] });
  expect(audit?.rollout.lineage).toEqual({ chk: { expression: expect.stringMatching(/^[0-9a-f]{16}$/) } });
  expect(audit?.steps.map((s) => [s.step_id, s.effect])).toEqual([['chk', 'reverted']]);
  expect(audit?.events.map((e) => e.event)).toEqual(['started', 'step_applied', 'step_reverted', 'rolled_back']);
});

test('two starts at once on one table: exactly one takes it', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10);
  const steps = [{ kind: 'addCheck' as const, id: 'chk', name: 'n_ok', expression: 'n >= 0' }];
  const results = await Promise.allSettled([begin(table, steps), begin(table, steps), begin(table, steps)]);
  expect(results.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
  for (const x of results) if (x.status === 'rejected') expect((x.reason as ApplicationFailure).type).toBe('TableBusy');
});

test('DDL that cannot get its lock in time fails retryably and applies nothing', async () => {
  const table = await makeCounterTable(pool, unique('t'), 10);
  const r = await begin(table, [{ kind: 'addColumn', id: 'add', column: 'v2', type: 'int', up: 'v' }]);
  const holder: PoolClient = await pool.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(`SELECT * FROM ${table} LIMIT 1`); // ACCESS SHARE: enough to block ALTER TABLE
    const err = await acts.applyStep({ ...r.input('add'), lockTimeoutMs: 200 }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ApplicationFailure);
    expect(err!.message).toContain('lock timeout');
  } finally {
    await holder.query('ROLLBACK');
    holder.release();
  }
  expect((await columnsOf(table)).map((c) => c.name)).toEqual(['id', 'n', 'v']);
  expect((await acts.applyStep(r.input('add'))).alreadyDone).toBe(false);
});

test('a hostile table name is only ever an identifier', async () => {
  const victim = await makeCounterTable(pool, unique('y'), 3);
  const victimName = victim.split('.')[1];
  const hostileName = `x"; DROP TABLE ${victimName}; --`;
  await pool.query(`CREATE TABLE public."${hostileName.replace(/"/g, '""')}" (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, v int)`);
  await pool.query(`INSERT INTO public."${hostileName.replace(/"/g, '""')}" (id, v) VALUES (1, 1), (2, 2)`);
  const hostile = `public.${hostileName}`;

  // the spec's own validation refuses such a name, so the steps are written for a plain table and pointed at the hostile one
  const plain = await makeCounterTable(pool, unique('t'), 1);
  const r = await begin(
    plain,
    [
      { kind: 'setNotNull', id: 'nn', column: 'v' },
      { kind: 'addCheck', id: 'chk', name: 'v_positive', expression: 'v > 0' },
      { kind: 'expose', id: 'expose', version: 2 },
      { kind: 'addColumn', id: 'add', column: 'v2', type: 'int', up: 'v' },
    ],
    { tables: [hostile] },
  );
  const before = await snapshotCatalog(pool, hostile, '^$');
  expect(before.exists).toBe(true);
  for (const id of ['nn', 'chk', 'expose']) {
    await acts.applyStep(r.input(id, hostile));
  }
  const view = await pool.query(
    `SELECT * FROM "${viewSchemaName(hostile, 2).replace(/"/g, '""')}"."${hostileName.replace(/"/g, '""')}" ORDER BY id`,
  );
  expect(view.rows).toEqual([
    { id: '1', n: 0, v: 1 },
    { id: '2', n: 0, v: 2 },
  ]);
  // the backfill engine takes plain names only: refused before any DDL
  await expectFailure(acts.applyStep(r.input('add', hostile)), 'StepSetupError', 'add', 'backfill');
  for (const id of ['expose', 'chk', 'nn']) await acts.revertStep(r.input(id, hostile));

  expect((await pool.query(`SELECT count(*)::int AS c FROM ${victim}`)).rows[0].c).toBe(3);
  await expectCatalogUnchanged(r);
  const finished = await acts.finishRollout({ rolloutId: r.rolloutId, workflowId: r.workflowId, state: 'rolled_back' });
  expect(finished.catalog).toEqual([{ table: hostile, equal: true, diff: [] }]);
});
