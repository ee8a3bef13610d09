import type { Pool } from 'pg';
import { unique, pool, client, taskQueue, useStack } from './harness';
import {
  makeOrders,
  snapshot,
  legacyChecksum,
  startSpec,
  outcome,
  waitForApproval,
  approve,
  rollBack,
  leftovers,
  viewOf,
} from './rollout-harness';
import { parseRolloutSpec } from '../../steps/spec';
import { columnChangePlan, formatColumnChangePlan } from '../../client/contract-plan';

/**
 * What a later step asks of a column an alterColumn changed survives
 * contract (docs/alter-column.md, "Later steps on the altered column"). Per
 * column-taking kind: alterColumn of qty (int -> bigint, with an `up` that
 * makes the values unique), then that kind on qty, approval, contract. Three
 * twins of one table: the rollout forward to contract, the same rollout
 * rolled back at its approval, and the state the spec asks for made with
 * plain DDL. Forward must equal the plain-DDL twin (catalog with defaults,
 * comments, constraints and indexes with their validity, and every row);
 * rolled back must equal what it was; `plan` names the physical column.
 */
jest.setTimeout(300_000);

useStack({ worker: true });

const ROWS = 300;
const UP = 'id * 10 + qty';
/** What the alterColumn does, as plain DDL: the state it asks for. */
const ALTER = (t: string) => `ALTER TABLE ${t} ALTER COLUMN qty TYPE bigint USING ${UP}`;

interface Case {
  kind: string;
  /** On each twin before anything runs. */
  setup?(pool: Pool, table: string, bare: string): Promise<void>;
  /** The later step (on qty, as users see it); none: the alterColumn alone. */
  step?(table: string, bare: string): object;
  /** The state the spec asks for, from the plain-DDL twin after ALTER. */
  direct(table: string, bare: string): string[];
  /** While the rolled-back twin waits at its approval: the old version still sees its schema. */
  atApproval?(pool: Pool, table: string): Promise<void>;
}

const one = async (sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows[0];
const legacyQty = (table: string) =>
  one(
    `SELECT a.attnotnull AS "notNull", pg_get_expr(d.adbin, d.adrelid) AS def, col_description(a.attrelid, a.attnum) AS comment
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = $1::regclass AND a.attname = 'qty'`,
    [table],
  );

const CASES: Case[] = [
  {
    // the check runs over the new values (unique by `up`), not the legacy ones (which are not)
    kind: 'addUnique',
    step: () => ({ kind: 'addUnique', columns: ['qty'] }),
    direct: (t, bare) => [ALTER(t), `ALTER TABLE ${t} ADD CONSTRAINT "${bare}_qty_key" UNIQUE (qty)`],
  },
  {
    kind: 'addForeignKey',
    async setup(p, t, bare) {
      await p.query(`CREATE TABLE public."${bare}_ref" (n bigint PRIMARY KEY)`);
      await p.query(`INSERT INTO public."${bare}_ref" SELECT ${UP} FROM ${t}`);
    },
    step: (_t, bare) => ({
      kind: 'addForeignKey',
      columns: ['qty'],
      references: { table: `public.${bare}_ref`, columns: ['n'] },
      referencingIndex: 'ignore',
    }),
    direct: (t, bare) => [
      ALTER(t),
      `ALTER TABLE ${t} ADD CONSTRAINT "${bare}_qty_fkey" FOREIGN KEY (qty) REFERENCES public."${bare}_ref" (n)`,
    ],
  },
  {
    kind: 'setDefault',
    async setup(p, t) {
      await p.query(`ALTER TABLE ${t} ALTER COLUMN qty SET DEFAULT 1`);
    },
    step: () => ({ kind: 'setDefault', column: 'qty', default: '42' }),
    direct: (t) => [ALTER(t), `ALTER TABLE ${t} ALTER COLUMN qty SET DEFAULT 42`],
    async atApproval(_p, t) {
      expect((await legacyQty(t)).def).toBe('1');
    },
  },
  {
    kind: 'dropDefault',
    async setup(p, t) {
      await p.query(`ALTER TABLE ${t} ALTER COLUMN qty SET DEFAULT 1`);
    },
    step: () => ({ kind: 'dropDefault', column: 'qty' }),
    direct: (t) => [ALTER(t), `ALTER TABLE ${t} ALTER COLUMN qty DROP DEFAULT`],
    async atApproval(_p, t) {
      expect((await legacyQty(t)).def).toBe('1');
    },
  },
  {
    kind: 'setComment',
    async setup(p, t) {
      await p.query(`COMMENT ON COLUMN ${t}.qty IS 'how many'`);
    },
    step: () => ({ kind: 'setComment', on: 'column', name: 'qty', comment: 'how many, in tens' }),
    direct: (t) => [ALTER(t), `COMMENT ON COLUMN ${t}.qty IS 'how many, in tens'`],
    async atApproval(_p, t) {
      expect((await legacyQty(t)).comment).toBe('how many');
    },
  },
  {
    kind: 'createIndex',
    step: () => ({ kind: 'createIndex', columns: ['qty'], where: 'qty > 100' }),
    direct: (t, bare) => [ALTER(t), `CREATE INDEX "${bare}_qty_idx" ON ${t} (qty) WHERE qty > 100`],
    async atApproval(_p, t) {
      // built over the new column, its predicate over the new values (not over the legacy column, to be rebuilt at contract)
      const { rows } = await pool.query(`SELECT pg_get_indexdef(indexrelid) AS def FROM pg_index WHERE indrelid = $1::regclass`, [t]);
      expect(rows.map((r) => r.def)).toContainEqual(
        expect.stringMatching(/_qty_idx ON .* \(qty_stagefill_new\) WHERE \(qty_stagefill_new > 100\)$/),
      );
    },
  },
  {
    kind: 'dropNotNull',
    step: () => ({ kind: 'dropNotNull', column: 'qty' }),
    direct: (t) => [ALTER(t), `ALTER TABLE ${t} ALTER COLUMN qty DROP NOT NULL`],
    async atApproval(_p, t) {
      expect((await legacyQty(t)).notNull).toBe(true);
    },
  },
  {
    kind: 'setNotNull',
    async setup(p, t) {
      await p.query(`ALTER TABLE ${t} ALTER COLUMN qty DROP NOT NULL`);
    },
    step: () => ({ kind: 'setNotNull', column: 'qty' }),
    direct: (t) => [ALTER(t), `ALTER TABLE ${t} ALTER COLUMN qty SET NOT NULL`],
  },
  {
    kind: 'addCheck',
    step: (_t, bare) => ({ kind: 'addCheck', name: `${bare}_qty_big`, expression: 'qty > 10' }),
    direct: (t, bare) => [ALTER(t), `ALTER TABLE ${t} ADD CONSTRAINT "${bare}_qty_big" CHECK (qty > 10)`],
  },
];

/** The catalog (snapshot: columns, defaults, constraints, indexes with validity, comments, triggers, views) with the table's name made T. */
async function shapeOf(table: string, bare: string): Promise<unknown> {
  return JSON.parse(
    JSON.stringify(await snapshot(table))
      .split(bare)
      .join('T'),
  );
}
const rowsOf = async (table: string) => (await pool.query(`SELECT * FROM ${table} ORDER BY id`)).rows;

async function twin(c: Case): Promise<{ table: string; bare: string }> {
  // short names: derived index names stay well inside 63 characters
  const bare = unique('al').replace(/_\d+_/, '_');
  const table = await makeOrders(pool, bare, ROWS);
  await c.setup?.(pool, table, bare);
  return { table, bare };
}

const rolloutOf = (t: { table: string; bare: string }, c: Case) => ({
  kind: 'rollout',
  name: unique(c.kind),
  table: t.table,
  rollbackWindow: '1s',
  steps: [
    { id: 'alter', kind: 'alterColumn', column: 'qty', newType: 'bigint', up: UP, down: '(qty % 10)::int', backfill: { chunkSize: 100 } },
    ...(c.step ? [{ id: 'later', ...c.step(t.table, t.bare) }] : []),
    { id: 'ok', kind: 'approval', timeout: '5m' },
    { id: 'contract', kind: 'contract' },
  ],
});

test.each(CASES.map((c) => [c.kind, c] as const))(
  'alterColumn then %s on the same column: forward through contract as the spec asks; rolled back identical',
  async (_kind, c) => {
    const [fwd, back, direct] = [await twin(c), await twin(c), await twin(c)];
    for (const sql of c.direct(direct.table, direct.bare)) await pool.query(sql);
    const before = await snapshot(back.table);
    const sumBefore = await legacyChecksum(pool, back.table);

    // plan names the physical column the later step touches
    const planned = formatColumnChangePlan(await columnChangePlan(parseRolloutSpec(rolloutOf(fwd, c)), ''));
    expect(planned).toContain('step later: qty is the physical column qty_stagefill_new (the new column of step alter)');

    const a = await startSpec(client, taskQueue, rolloutOf(fwd, c));
    const b = await startSpec(client, taskQueue, rolloutOf(back, c));

    await waitForApproval(b.handle);
    await c.atApproval?.(pool, back.table);
    await rollBack(b.handle, 'the twin rolls back');
    const outB = await outcome(b.handle);
    expect(outB.state).toBe('rolled_back');
    expect(await snapshot(back.table)).toEqual(before);
    expect(await legacyChecksum(pool, back.table)).toBe(sumBefore);

    await waitForApproval(a.handle);
    await approve(a.handle);
    expect(await outcome(a.handle)).toMatchObject({ state: 'completed' });
    expect(await shapeOf(fwd.table, fwd.bare)).toEqual(await shapeOf(direct.table, direct.bare));
    expect(await rowsOf(fwd.table)).toEqual(await rowsOf(direct.table));
    expect(await leftovers(pool, fwd.bare)).toEqual([]);
  },
);

test('an insert through the new version that leaves the altered column out gives the legacy column its default, not down(NULL)', async () => {
  const c: Case = {
    kind: 'newVersionInsert',
    async setup(p, t) {
      await p.query(`ALTER TABLE ${t} ALTER COLUMN qty SET DEFAULT 3`);
    },
    step: () => ({ kind: 'expose', version: 2 }),
    direct: () => [],
  };
  const t = await twin(c);
  const { handle } = await startSpec(client, taskQueue, rolloutOf(t, c));
  await waitForApproval(handle);
  const s = await pool.connect();
  try {
    await s.query(`SET search_path TO "${t.table.replace('.', '_')}_v2", public`);
    await s.query(`INSERT INTO "${t.bare}" (id, customer_id, amount, status, created_at) VALUES (5001, 1, 1, 'new', now())`);
    await s.query(`INSERT INTO "${t.bare}" (id, customer_id, amount, qty, status, created_at) VALUES (5002, 1, 1, 52, 'new', now())`);
  } finally {
    await s.query('RESET search_path');
    s.release();
  }
  // the view really is the new version's: its qty is the new column
  expect((await one(`SELECT qty FROM ${viewOf(t.table, 2)} WHERE id = 5001`)).qty).toBe('50013');
  const rows = (await pool.query(`SELECT id, qty, qty_stagefill_new AS new FROM ${t.table} WHERE id > 5000 ORDER BY id`)).rows;
  expect(rows).toEqual([
    { id: '5001', qty: 3, new: '50013' }, // the legacy default, as the old schema gives; the new column is up of it
    { id: '5002', qty: 2, new: '52' }, // set through the new version: down of it
  ]);
  await approve(handle);
  expect(await outcome(handle)).toMatchObject({ state: 'completed' });
  expect((await one(`SELECT qty FROM ${t.table} WHERE id = 5001`)).qty).toBe('50013');
});

test('an identity keeps its options (INCREMENT, CACHE, MINVALUE) and its place; widened to bigint it gets bigint range; rolled back identical', async () => {
  const make = async () => {
    const bare = unique('idn').replace(/_\d+_/, '_');
    const table = `public.${bare}`;
    await pool.query(
      `CREATE TABLE ${table} (id int GENERATED BY DEFAULT AS IDENTITY (START WITH 1000 INCREMENT BY 7 MINVALUE 3 CACHE 5) PRIMARY KEY, note text)`,
    );
    await pool.query(`INSERT INTO ${table} (note) SELECT 'n' || g FROM generate_series(1, 50) g`);
    return { table, bare };
  };
  const [fwd, back, direct] = [await make(), await make(), await make()];
  await pool.query(`ALTER TABLE ${direct.table} ALTER COLUMN id TYPE bigint`);
  const sequenceOf = async (t: { table: string; bare: string }) => {
    const r = await one(
      `SELECT a.attidentity AS identity, format_type(p.seqtypid, NULL) AS type, p.seqstart::text AS start, p.seqincrement::text AS increment,
              p.seqmin::text AS min, p.seqmax::text AS max, p.seqcache::text AS cache, p.seqcycle AS cycle, s.relname AS name
         FROM pg_attribute a JOIN pg_depend d ON d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.deptype = 'i'
         JOIN pg_sequence p ON p.seqrelid = d.objid JOIN pg_class s ON s.oid = p.seqrelid
        WHERE a.attrelid = $1::regclass AND a.attname = 'id'`,
      [t.table],
    );
    return { ...r, name: r.name.split(t.bare).join('T') };
  };
  const backBefore = { catalog: await snapshot(back.table), sequence: await sequenceOf(back) };
  const rollout = (t: { table: string }) => ({
    kind: 'rollout',
    name: unique('identity'),
    table: t.table,
    rollbackWindow: '1s',
    steps: [
      { id: 'alter', kind: 'alterColumn', column: 'id', newType: 'bigint', up: 'id::bigint', down: 'id::int' },
      { id: 'ok', kind: 'approval', timeout: '5m' },
      { id: 'contract', kind: 'contract' },
    ],
  });
  const a = await startSpec(client, taskQueue, rollout(fwd));
  const b = await startSpec(client, taskQueue, rollout(back));
  await waitForApproval(b.handle);
  await rollBack(b.handle, 'the twin rolls back');
  expect((await outcome(b.handle)).state).toBe('rolled_back');
  expect({ catalog: await snapshot(back.table), sequence: await sequenceOf(back) }).toEqual(backBefore);

  await waitForApproval(a.handle);
  await approve(a.handle);
  expect(await outcome(a.handle)).toMatchObject({ state: 'completed' });
  const got = await sequenceOf(fwd);
  const want = await sequenceOf(direct);
  // START WITH is where the old one stood: the plain ALTER keeps the original start, the carried one the next value
  expect({ ...got, start: undefined }).toEqual({ ...want, start: undefined });
  expect(got).toMatchObject({ type: 'bigint', increment: '7', min: '3', cache: '5', max: '9223372036854775807' });
  expect(await shapeOf(fwd.table, fwd.bare)).toEqual(await shapeOf(direct.table, direct.bare));
  // both continue where the old sequence stood, by 7
  const next = async (t: string) => (await one(`INSERT INTO ${t} (note) VALUES ('next') RETURNING id`)).id;
  expect(await next(fwd.table)).toBe(await next(direct.table));
  expect(await rowsOf(fwd.table)).toEqual(await rowsOf(direct.table));
});

test('the counterpart indexes are built right after the backfill, valid before contract starts; contract gives them their names', async () => {
  const c: Case = {
    kind: 'indexesAfterBackfill',
    async setup(p, t, bare) {
      await p.query(`CREATE INDEX "${bare}_qty_ix" ON ${t} (qty) WHERE qty > 3`);
      await p.query(`ALTER TABLE ${t} ADD CONSTRAINT "${bare}_id_qty" UNIQUE (id, qty)`);
    },
    direct: (t) => [ALTER(t)],
  };
  const [fwd, direct] = [await twin(c), await twin(c)];
  for (const sql of c.direct(direct.table, direct.bare)) await pool.query(sql);
  const { handle } = await startSpec(client, taskQueue, rolloutOf(fwd, c));
  await waitForApproval(handle);
  // contract has not started: the counterparts over the new column are there already, valid
  const built = (
    await pool.query(
      `SELECT c.relname AS name, i.indisvalid AS valid, i.indisunique AS "unique" FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = $1::regclass AND c.relname LIKE '%\\_sfdup\\_%' ORDER BY 1`,
      [fwd.table],
    )
  ).rows.map((r) => ({
    ...r,
    name: r.name
      .split(fwd.bare)
      .join('T')
      .replace(/_sfdup_[0-9a-f]+$/, '_sfdup'),
  }));
  expect(built).toEqual([
    { name: 'T_id_qty_sfdup', valid: true, unique: true },
    { name: 'T_qty_ix_sfdup', valid: true, unique: false },
  ]);
  await approve(handle);
  expect(await outcome(handle)).toMatchObject({ state: 'completed' });
  expect(await shapeOf(fwd.table, fwd.bare)).toEqual(await shapeOf(direct.table, direct.bare));
  expect(await rowsOf(fwd.table)).toEqual(await rowsOf(direct.table));
  expect(await leftovers(pool, fwd.bare)).toEqual([]);
});

test('an addForeignKey of another table onto the altered column references its new column and follows it through contract; plan names it; rolled back identical', async () => {
  const make = async () => {
    const bare = unique('fk').replace(/_\d+_/, '_');
    const table = await makeOrders(pool, bare, ROWS);
    const child = `public.${bare}_c`;
    // the child holds new values (up of the legacy ones): a key to the legacy column would refuse them
    await pool.query(`CREATE TABLE ${child} (id bigint PRIMARY KEY, order_qty bigint NOT NULL)`);
    await pool.query(`INSERT INTO ${child} SELECT id, ${UP} FROM ${table} WHERE id % 3 = 0`);
    return { table, bare, child };
  };
  const [fwd, back, direct] = [await make(), await make(), await make()];
  await pool.query(ALTER(direct.table));
  await pool.query(`ALTER TABLE ${direct.table} ADD CONSTRAINT "${direct.bare}_qty_key" UNIQUE (qty)`);
  await pool.query(
    `ALTER TABLE ${direct.child} ADD CONSTRAINT "${direct.bare}_c_order_qty_fkey" FOREIGN KEY (order_qty) REFERENCES ${direct.table} (qty)`,
  );
  const rollout = (t: { table: string; child: string }) => ({
    kind: 'rollout',
    name: unique('fkonto'),
    table: t.table,
    rollbackWindow: '1s',
    steps: [
      { id: 'alter', kind: 'alterColumn', column: 'qty', newType: 'bigint', up: UP, down: '(qty % 10)::int', backfill: { chunkSize: 100 } },
      { id: 'unique', kind: 'addUnique', columns: ['qty'] },
      {
        id: 'fk',
        kind: 'addForeignKey',
        table: t.child,
        columns: ['order_qty'],
        references: { table: t.table, columns: ['qty'] },
        referencingIndex: 'ignore',
      },
      { id: 'ok', kind: 'approval', timeout: '5m' },
      { id: 'contract', kind: 'contract' },
    ],
  });
  const both = async (t: { table: string; child: string; bare: string }, of: (table: string) => Promise<unknown>) => [
    await of(t.table),
    await of(t.child),
  ];
  const before = await both(back, snapshot);
  const rowsBefore = await both(back, rowsOf);

  const planned = formatColumnChangePlan(await columnChangePlan(parseRolloutSpec(rollout(fwd)), ''));
  expect(planned).toContain(`step fk: ${fwd.table}.qty is the physical column qty_stagefill_new (the new column of step alter)`);

  const a = await startSpec(client, taskQueue, rollout(fwd));
  const b = await startSpec(client, taskQueue, rollout(back));
  await waitForApproval(b.handle);
  // the key references the new column (the legacy one holds none of the child's values)
  const { rows } = await pool.query(
    `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f'`,
    [back.child],
  );
  expect(rows.map((r) => r.def)).toEqual([expect.stringMatching(/^FOREIGN KEY \(order_qty\) REFERENCES .*\(qty_stagefill_new\)$/)]);
  await rollBack(b.handle, 'the twin rolls back');
  expect((await outcome(b.handle)).state).toBe('rolled_back');
  expect(await both(back, snapshot)).toEqual(before);
  expect(await both(back, rowsOf)).toEqual(rowsBefore);

  await waitForApproval(a.handle);
  await approve(a.handle);
  expect(await outcome(a.handle)).toMatchObject({ state: 'completed' });
  const shapes = (t: { table: string; child: string; bare: string }) => both(t, (x) => shapeOf(x, t.bare));
  expect(await shapes(fwd)).toEqual(await shapes(direct));
  expect(await both(fwd, rowsOf)).toEqual(await both(direct, rowsOf));
  expect(await leftovers(pool, fwd.bare)).toEqual([]);
  // the key holds over the renamed column: a child row without its order is refused
  await expect(pool.query(`INSERT INTO ${fwd.child} VALUES (999999, 7)`)).rejects.toThrow(/foreign key/);
});
