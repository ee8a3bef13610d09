import { unique, pool, useStack } from './harness';
import { makeOrders, legacyChecksum, progressOf, outcome } from './rollout-harness';
import { catalogOf } from '../../chaos/sql';
import { rolloutOnOwnWorker, waitForState } from './own-worker';
import { rollbackSignal, approveSignal } from '../../workflows/definitions';
import { readHistory, formatHistory } from '../../client/history';

/**
 * Rollbacks prove data, not only the catalog; causes travel up; the audit
 * trail names who did what: on the real server and database.
 */

jest.setTimeout(120_000);
useStack();

const kinds = [
  ['volatile', 'bigint', `qty::bigint * 1000 + floor(random() * 1000)::bigint`, `round(qty / 1000.0)::int`],
  ['stable', 'bigint', `qty::bigint + extract(epoch FROM now())::bigint`, `(qty % 1000)::int`],
  ['immutable', 'numeric(12,2)', `qty::numeric(12,2) / 3`, `floor(qty * 3)::int`],
] as const;

test.each(kinds)(
  '%s up/down: forward, then an operator rolls back at approval: legacy values byte-identical, catalog equal, the operator on each revert',
  async (_kind, newType, up, down) => {
    const table = await makeOrders(pool, unique('orders'), 4000);
    const catalogBefore = await catalogOf(pool, table);
    const sumBefore = await legacyChecksum(pool, table);
    const { handle } = await rolloutOnOwnWorker({
      name: unique('kinds'),
      table,
      steps: [
        { kind: 'alterColumn', column: 'qty', newType, up, down, backfill: { chunkSize: 500 } },
        { kind: 'approval', timeout: '10m' },
      ],
    });
    await waitForState(handle, 'waiting_approval');
    // writes through the new version meanwhile are fine to lose on rollback; the check is on what stagefill did
    expect(await legacyChecksum(pool, table)).toBe(sumBefore);
    await handle.signal(rollbackSignal, { by: 'alice', reason: 'numbers look off' });
    const out = await outcome(handle);
    expect(out.state).toBe('rolled_back');
    expect(await legacyChecksum(pool, table)).toBe(sumBefore);
    expect(await catalogOf(pool, table)).toEqual(catalogBefore);

    const h = await readHistory(pool, handle.workflowId);
    const reverts = h.events.filter((e) => e.event === 'step_reverted');
    expect(reverts.length).toBeGreaterThan(0);
    expect(reverts.every((e) => e.actor === 'alice')).toBe(true);
    const bf = h.rollout!.backfills;
    expect(bf).toHaveLength(1);
    expect(bf[0]!.generations[0]!.checkpointHash).toMatch(/^[0-9a-f]{32}$/);
    const text = formatHistory(h);
    expect(text).toContain(`checkpoint hash ${bf[0]!.generations[0]!.checkpointHash}`);
    expect(text).toMatch(/catalog of .* after rollback: identical to before the rollout/);
    expect(text).toMatch(/step_reverted \[1-alterColumn\] by alice/);
  },
);

test('an up that raises on some rows: the backfill fails, its cause reaches the rollout, status, history and the exception; legacy values untouched', async () => {
  const table = await makeOrders(pool, unique('orders'), 3000);
  const sumBefore = await legacyChecksum(pool, table);
  const catalogBefore = await catalogOf(pool, table);
  const { handle } = await rolloutOnOwnWorker({
    name: unique('raises'),
    table,
    steps: [
      {
        kind: 'alterColumn',
        column: 'qty',
        newType: 'bigint',
        up: `CASE WHEN qty = 5 THEN qty / (qty - 5) ELSE qty END::bigint`,
        down: 'qty::int',
        backfill: { chunkSize: 500 },
      },
      { kind: 'approval', timeout: '10m' },
    ],
  });
  const out = await outcome(handle);
  expect(out.state).toBe('rolled_back');
  expect(out.failure).toMatch(/division by zero/);
  expect(out.failure).toMatch(/chunk \[/);
  expect(out.failure).not.toMatch(/^rolled back: step "[^"]+": backfill failed: Child Workflow execution failed$/);
  const status = await progressOf(handle);
  expect(JSON.stringify(status)).toMatch(/division by zero/);
  const h = await readHistory(pool, handle.workflowId);
  expect(h.rollout!.reason).toMatch(/division by zero/);
  expect(formatHistory(h)).toMatch(/division by zero/);
  expect(await legacyChecksum(pool, table)).toBe(sumBefore);
  expect(await catalogOf(pool, table)).toEqual(catalogBefore);
});

test('a backfill child that cannot start: its cause (the field) in status --json, history and the exception', async () => {
  const table = await makeOrders(pool, unique('orders'), 500);
  const { handle } = await rolloutOnOwnWorker({
    name: unique('nokey'),
    table,
    steps: [{ kind: 'addColumn', column: 'double_qty', type: 'int', up: 'qty * 2', backfill: { key: 'nope', chunkSize: 100 } }],
  });
  const out = await outcome(handle);
  expect(out.state).toBe('rolled_back');
  expect(out.failure).toMatch(/nope/);
  expect(JSON.stringify(await progressOf(handle))).toMatch(/nope/);
  const h = await readHistory(pool, handle.workflowId);
  expect(h.rollout!.reason).toMatch(/nope/);
  expect(h.events.some((e) => e.event === 'step_failed' && JSON.stringify(e.detail).includes('nope'))).toBe(true);
});

test('every step kind on a mixed-case table and mixed-case columns', async () => {
  const name = unique('Mixed_Orders');
  const q = `public."${name}"`;
  await pool.query(
    `CREATE TABLE ${q} (id bigint PRIMARY KEY, "Amount" numeric(12,2) NOT NULL CHECK ("Amount" >= 0), "Qty" int, "Note" text)`,
  );
  await pool.query(`INSERT INTO ${q} SELECT g, g * 1.5, g % 9, 'n' FROM generate_series(1, 2000) g`);
  const { handle } = await rolloutOnOwnWorker({
    name: unique('mixed'),
    table: `public.${name}`,
    steps: [
      { kind: 'addColumn', column: 'Total', type: 'numeric(14,2)', up: `"Amount" * coalesce("Qty", 0)`, backfill: { chunkSize: 500 } },
      {
        kind: 'alterColumn',
        column: 'Amount',
        newType: 'bigint',
        up: `round("Amount" * 100)::bigint`,
        down: `("Amount" / 100.0)::numeric(12,2)`,
        backfill: { chunkSize: 500 },
      },
      { kind: 'setNotNull', column: 'Qty' },
      { kind: 'addCheck', name: 'Qty_Small', expression: `"Qty" < 10` },
      { kind: 'sql', apply: `COMMENT ON COLUMN ${q}."Note" IS 'mixed'`, revert: `COMMENT ON COLUMN ${q}."Note" IS NULL` },
      { kind: 'backfill', transform: `UPDATE ${q} SET "Note" = 'm' WHERE id >= :lo AND id < :hi`, chunkSize: 500 },
      {
        kind: 'gate',
        checks: [{ name: 'cents', sql: `SELECT count(*) FROM ${q} WHERE new("Amount") <> round(old("Amount") * 100)`, expect: { eq: 0 } }],
      },
      { kind: 'expose', version: 2 },
      {
        kind: 'soak',
        duration: '1s',
        every: '1s',
        checks: [{ name: 'no nulls', sql: `SELECT count(*) FROM ${q} WHERE "Total" IS NULL`, expect: { eq: 0 } }],
      },
      { kind: 'approval', timeout: '10m' },
      { kind: 'contract' },
    ],
  });
  await waitForState(handle, 'waiting_approval');
  await handle.signal(approveSignal, { by: 'bob' });
  expect(await outcome(handle)).toMatchObject({ state: 'completed' });
  const cols = (
    await pool.query(
      `SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      [q],
    )
  ).rows;
  expect(cols.map((c) => [c.attname, c.type, c.attnotnull])).toEqual([
    ['id', 'bigint', true],
    ['Qty', 'integer', true],
    ['Note', 'text', false],
    ['Total', 'numeric(14,2)', false],
    ['Amount', 'bigint', true],
  ]);
  const checks = (
    await pool.query(
      `SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'c' ORDER BY conname`,
      [q],
    )
  ).rows;
  expect(checks.map((c) => c.def)).toContain('CHECK (("Qty" < 10))');
  // the original CHECK ("Amount" >= 0), carried over to the bigint column under its own name
  expect(checks.find((c) => c.conname === `${name}_Amount_check`)?.def).toMatch(/"Amount"(\)::numeric)? >= \(0\)::numeric/);
  await expect(pool.query(`INSERT INTO ${q} (id, "Amount", "Qty") VALUES (99999, -1, 1)`)).rejects.toMatchObject({ code: '23514' });
  const row = (await pool.query(`SELECT "Amount", "Total", "Note" FROM ${q} WHERE id = 10`)).rows[0];
  expect(row).toEqual({ Amount: '1500', Total: '15.00', Note: 'm' });
});

test('the index and constraint step kinds on a mixed-case table and mixed-case columns', async () => {
  const name = unique('Mixed_Idx');
  const q = `public."${name}"`;
  const parents = `public."${name}_Parents"`;
  await pool.query(`CREATE TABLE ${parents} ("Id" bigint PRIMARY KEY)`);
  await pool.query(`INSERT INTO ${parents} SELECT g FROM generate_series(1, 100) g`);
  await pool.query(`CREATE TABLE ${q} (id bigint PRIMARY KEY, "Code" text NOT NULL, "Parent_Id" bigint, "Price" numeric NOT NULL, "Note" text NOT NULL DEFAULT 'n',
    CONSTRAINT "Price_Positive" CHECK ("Price" > 0), CONSTRAINT "Code_Short" CHECK (length("Code") < 20))`);
  await pool.query(`CREATE INDEX "${name}_Old" ON ${q} ("Note")`);
  await pool.query(`INSERT INTO ${q} SELECT g, 'C' || g, 1 + g % 100, g, 'x' FROM generate_series(1, 2000) g`);
  const { handle } = await rolloutOnOwnWorker({
    name: unique('mixedidx'),
    table: `public.${name}`,
    steps: [
      { kind: 'createIndex', name: `${name}_Price`, columns: ['Price'], where: `"Price" > 10` },
      { kind: 'addUnique', name: `${name}_Code_Key`, columns: ['Code'] },
      {
        kind: 'addForeignKey',
        name: 'Parent_Fk',
        columns: ['Parent_Id'],
        references: { table: `public.${name}_Parents`, columns: ['Id'] },
        referencingIndex: 'ignore',
      },
      { kind: 'setDefault', column: 'Price', default: '1' },
      { kind: 'dropDefault', column: 'Note' },
      { kind: 'dropNotNull', column: 'Note' },
      { kind: 'dropConstraint', name: 'Price_Positive' },
      { kind: 'renameConstraint', from: 'Code_Short', to: 'Code_Is_Short' },
      { kind: 'setComment', on: 'column', name: 'Code', comment: 'mixed' },
      { kind: 'dropIndex', name: `${name}_Old` },
      { kind: 'contract' },
    ],
  });
  expect(await outcome(handle)).toMatchObject({ state: 'completed' });
  const con = (
    await pool.query(`SELECT conname, contype, convalidated FROM pg_constraint WHERE conrelid = $1::regclass ORDER BY conname`, [q])
  ).rows.map((r) => `${r.conname}:${r.contype}:${r.convalidated}`);
  expect(con).toEqual(expect.arrayContaining(['Code_Is_Short:c:true', `${name}_Code_Key:u:true`, 'Parent_Fk:f:true']));
  expect(con.some((c) => c.startsWith('Price_Positive') || c.startsWith('Code_Short:'))).toBe(false);
  const idx = (
    await pool.query(`SELECT indexrelid::regclass::text AS name, indisvalid FROM pg_index WHERE indrelid = $1::regclass`, [q])
  ).rows.map((r) => r.name);
  expect(idx).toContain(`"${name}_Price"`);
  expect(idx).not.toContain(`"${name}_Old"`);
  const cols = (
    await pool.query(
      `SELECT attname, attnotnull, pg_get_expr(d.adbin, d.adrelid) AS def, col_description(a.attrelid, a.attnum) AS comment FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
      [q],
    )
  ).rows;
  const col = (n: string) => cols.find((c) => c.attname === n);
  expect(col('Price').def).toBe('1');
  expect(col('Note')).toMatchObject({ def: null, attnotnull: false });
  expect(col('Code').comment).toBe('mixed');
});
