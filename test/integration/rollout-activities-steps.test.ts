import { bindRange } from '../../db/backfill/backfills';
import { snapshotCatalog } from '../../db/rollout/catalog';
import { pool, unique, makeCounterTable } from './harness';
import {
  useActivities,
  acts,
  begin,
  expectCatalogUnchanged,
  expectFailure,
  roundTrip,
  columnsOf,
  stagefillFunctions,
} from './rollout-activities-harness';
import { viewSchemaName } from '../../core/rollout/object-names';

/**
 * Each step kind's apply and revert, called as plain functions against the real Postgres: forward and back, exactly once,
 * with the catalog compared before and after (the workflow tests drive the same functions through Temporal).
 */

jest.setTimeout(120_000);

useActivities();

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
