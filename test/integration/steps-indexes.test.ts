import type { Pool } from 'pg';
import { unique, pool, client, taskQueue, useStack } from './harness';
import { makeOrders, legacyChecksum, startSpec, outcome, waitForApproval, approve, rollBack } from './rollout-harness';
import { catalogOf } from '../../chaos/sql';

/**
 * Each index and constraint step kind (steps/create-index ... steps/set-comment),
 * on the real server and database: one run goes forward through an approval to
 * contract; a second, on a twin table, is rolled back at the approval and must
 * leave the catalog (columns, defaults, constraints, indexes and their validity,
 * comments, triggers, views) exactly as it was.
 */
jest.setTimeout(240_000);

useStack({ worker: true });

interface Case {
  kind: string;
  /** Extra setup on a fresh orders table (both twins get it). */
  setup?(pool: Pool, table: string, bare: string): Promise<void>;
  steps(table: string, bare: string): object[];
  /** While the rollback twin waits at its approval: what the apply did (or, for deferred drops, did not do yet). */
  atApproval?(pool: Pool, table: string, bare: string): Promise<void>;
  /** After contract on the forward twin. */
  after(pool: Pool, table: string, bare: string): Promise<void>;
}

const one = async (pool: Pool, sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows[0];
const indexRow = (pool: Pool, bare: string, name: string) =>
  one(
    pool,
    `SELECT pg_get_indexdef(i.indexrelid) AS def, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1 AND i.indrelid = $2::regclass`,
    [name, `public."${bare}"`],
  );
const constraintRow = (pool: Pool, bare: string, name: string) =>
  one(
    pool,
    `SELECT pg_get_constraintdef(oid) AS def, convalidated AS validated, contype AS type FROM pg_constraint WHERE conname = $1 AND conrelid = $2::regclass`,
    [name, `public."${bare}"`],
  );
const columnRow = (pool: Pool, bare: string, column: string) =>
  one(
    pool,
    `SELECT a.attnotnull AS "notNull", pg_get_expr(d.adbin, d.adrelid) AS def, col_description(a.attrelid, a.attnum) AS comment
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = $1::regclass AND a.attname = $2`,
    [`public."${bare}"`, column],
  );

const CASES: Case[] = [
  {
    kind: 'createIndex',
    async setup(pool, table) {
      await pool.query(`ALTER TABLE ${table} ADD COLUMN "CustomerRef" int`);
      await pool.query(`UPDATE ${table} SET "CustomerRef" = customer_id * 3`);
    },
    steps: (_t, bare) => [
      { kind: 'createIndex', columns: ['CustomerRef', 'status'], include: ['amount'], where: 'qty > 1', with: { fillfactor: 70 } },
      { kind: 'createIndex', name: `${bare}_lower_status`.slice(0, 63), method: 'hash', expressions: ['lower(status)'] },
      { kind: 'createIndex', method: 'brin', columns: ['created_at'], with: { pages_per_range: 32 } },
      { kind: 'createIndex', unique: true, columns: ['id', 'status'] },
    ],
    async atApproval(pool, _t, bare) {
      expect(await indexRow(pool, bare, `${bare}_CustomerRef_status_idx`)).toMatchObject({ valid: true });
    },
    async after(pool, _t, bare) {
      const a = await indexRow(pool, bare, `${bare}_CustomerRef_status_idx`);
      expect(a.valid).toBe(true);
      expect(a.def).toMatch(/USING btree \("CustomerRef", status\) INCLUDE \(amount\) WITH \(fillfactor='70'\) WHERE \(qty > 1\)/);
      expect((await indexRow(pool, bare, `${bare}_lower_status`.slice(0, 63))).def).toMatch(/USING hash \(lower\(status\)\)/);
      expect((await indexRow(pool, bare, `${bare}_created_at_idx`)).def).toMatch(/USING brin \(created_at\) WITH \(pages_per_range='32'\)/);
      expect((await indexRow(pool, bare, `${bare}_id_status_idx`)).def).toMatch(/CREATE UNIQUE INDEX .* USING btree \(id, status\)/);
    },
  },
  {
    kind: 'dropIndex',
    async setup(pool, table, bare) {
      await pool.query(`CREATE INDEX "${bare}_qty" ON ${table} (qty)`);
    },
    steps: (_t, bare) => [{ kind: 'dropIndex', name: `${bare}_qty` }],
    async atApproval(pool, _t, bare) {
      expect(await indexRow(pool, bare, `${bare}_qty`)).toMatchObject({ valid: true }); // deferred: still there
    },
    async after(pool, _t, bare) {
      expect(await indexRow(pool, bare, `${bare}_qty`)).toBeUndefined();
    },
  },
  {
    kind: 'addUnique',
    steps: () => [{ kind: 'addUnique', columns: ['status', 'id'] }],
    async atApproval(pool, _t, bare) {
      expect(await constraintRow(pool, bare, `${bare}_status_id_key`)).toMatchObject({ type: 'u', validated: true });
    },
    async after(pool, table, bare) {
      expect(await constraintRow(pool, bare, `${bare}_status_id_key`)).toMatchObject({ type: 'u', def: 'UNIQUE (status, id)' });
      await expect(
        pool.query(`INSERT INTO ${table} SELECT id + 1000000, customer_id, amount, qty, status, created_at FROM ${table} WHERE id = 1`),
      ).resolves.toBeDefined();
      await expect(
        pool.query(`UPDATE ${table} SET id = 2, status = (SELECT status FROM ${table} WHERE id = 2) WHERE id = 1`),
      ).rejects.toThrow(/duplicate key|unique/);
    },
  },
  {
    kind: 'addForeignKey',
    async setup(pool, _table, bare) {
      await pool.query(`CREATE TABLE public."${bare}_cust" (cid int, st text, PRIMARY KEY (st, cid))`);
      await pool.query(
        `INSERT INTO public."${bare}_cust" SELECT g, s FROM generate_series(1, 100) g, unnest(ARRAY['new','paid','shipped']) s`,
      );
    },
    steps: (_t, bare) => [
      {
        kind: 'addForeignKey',
        columns: ['customer_id', 'status'],
        references: { table: `public.${bare}_cust`, columns: ['cid', 'st'] },
        onDelete: 'restrict',
        onUpdate: 'cascade',
        match: 'full',
        referencingIndex: 'create',
      },
    ],
    async atApproval(pool, _t, bare) {
      expect(await constraintRow(pool, bare, `${bare}_customer_id_status_fkey`)).toMatchObject({ type: 'f', validated: true });
      expect(await indexRow(pool, bare, `${bare}_customer_id_status_idx`)).toMatchObject({ valid: true });
    },
    async after(pool, table, bare) {
      const fk = await constraintRow(pool, bare, `${bare}_customer_id_status_fkey`);
      expect(fk).toMatchObject({ type: 'f', validated: true });
      expect(fk.def).toBe(
        `FOREIGN KEY (customer_id, status) REFERENCES ${bare}_cust(cid, st) MATCH FULL ON UPDATE CASCADE ON DELETE RESTRICT`,
      );
      expect(await indexRow(pool, bare, `${bare}_customer_id_status_idx`)).toMatchObject({ valid: true });
      await expect(pool.query(`UPDATE ${table} SET customer_id = 5000 WHERE id = 1`)).rejects.toThrow(/foreign key/);
    },
  },
  {
    kind: 'setDefault',
    async setup(pool, table) {
      await pool.query(`ALTER TABLE ${table} ALTER COLUMN qty SET DEFAULT 1`);
    },
    steps: () => [
      { kind: 'setDefault', column: 'qty', default: '42' },
      { kind: 'setDefault', column: 'created_at', default: 'now()' },
    ],
    async after(pool, _t, bare) {
      expect((await columnRow(pool, bare, 'qty')).def).toBe('42');
      expect((await columnRow(pool, bare, 'created_at')).def).toBe('now()');
    },
  },
  {
    kind: 'dropDefault',
    async setup(pool, table) {
      await pool.query(`ALTER TABLE ${table} ALTER COLUMN status SET DEFAULT 'new'`);
    },
    steps: () => [{ kind: 'dropDefault', column: 'status' }],
    async after(pool, _t, bare) {
      expect((await columnRow(pool, bare, 'status')).def).toBeNull();
    },
  },
  {
    kind: 'dropNotNull',
    steps: () => [{ kind: 'dropNotNull', column: 'qty' }],
    async atApproval(pool, _t, bare) {
      expect((await columnRow(pool, bare, 'qty')).notNull).toBe(false);
    },
    async after(pool, table, bare) {
      expect((await columnRow(pool, bare, 'qty')).notNull).toBe(false);
      await pool.query(`UPDATE ${table} SET qty = NULL WHERE id = 1`);
    },
  },
  {
    kind: 'dropConstraint',
    async setup(pool, table, bare) {
      await pool.query(`ALTER TABLE ${table} ADD CONSTRAINT "${bare}_qty_pos" CHECK (qty > 0)`);
    },
    steps: (_t, bare) => [{ kind: 'dropConstraint', name: `${bare}_qty_pos` }],
    async atApproval(pool, _t, bare) {
      expect(await constraintRow(pool, bare, `${bare}_qty_pos`)).toMatchObject({ type: 'c', validated: true }); // deferred: still enforced
    },
    async after(pool, _t, bare) {
      expect(await constraintRow(pool, bare, `${bare}_qty_pos`)).toBeUndefined();
    },
  },
  {
    kind: 'renameConstraint',
    steps: (_t, bare) => [{ kind: 'renameConstraint', from: `${bare}_pkey`, to: `${bare}_pk` }],
    async after(pool, _t, bare) {
      expect(await constraintRow(pool, bare, `${bare}_pkey`)).toBeUndefined();
      expect(await constraintRow(pool, bare, `${bare}_pk`)).toMatchObject({ type: 'p' });
      expect(await indexRow(pool, bare, `${bare}_pk`)).toMatchObject({ valid: true });
    },
  },
  {
    kind: 'setComment',
    async setup(pool, table, bare) {
      await pool.query(`COMMENT ON COLUMN ${table}.amount IS 'old'`);
      await pool.query(`ALTER TABLE ${table} ADD CONSTRAINT "${bare}_qty_pos" CHECK (qty > 0)`);
      await pool.query(`COMMENT ON CONSTRAINT "${bare}_qty_pos" ON ${table} IS 'was here'`);
    },
    steps: (_t, bare) => [
      { kind: 'setComment', on: 'column', name: 'amount', comment: "in euros, it's 2 decimals" },
      { kind: 'setComment', on: 'table', comment: 'orders' },
      { kind: 'setComment', on: 'index', name: `${bare}_pkey`, comment: 'the key' },
      { kind: 'setComment', on: 'constraint', name: `${bare}_qty_pos`, comment: null },
    ],
    async after(pool, table, bare) {
      expect((await columnRow(pool, bare, 'amount')).comment).toBe("in euros, it's 2 decimals");
      expect((await one(pool, `SELECT obj_description($1::regclass, 'pg_class') AS c`, [table])).c).toBe('orders');
      expect((await one(pool, `SELECT obj_description($1::regclass, 'pg_class') AS c`, [`public."${bare}_pkey"`])).c).toBe('the key');
      expect(
        (await one(pool, `SELECT obj_description(oid, 'pg_constraint') AS c FROM pg_constraint WHERE conname = $1`, [`${bare}_qty_pos`])).c,
      ).toBeNull();
    },
  },
];

test.each(CASES.map((c) => [c.kind, c] as const))(
  '%s: forward to contract; rolled back at the approval, the catalog is as before',
  async (_kind, c) => {
    // short names: derived index names must stay well inside 63 characters
    const make = async () => {
      const bare = unique('ix').replace(/_\d+_/, '_');
      const table = await makeOrders(pool, bare, 2_000);
      await c.setup?.(pool, table, bare);
      return { table, bare };
    };
    const fwd = await make();
    const back = await make();
    const before = await catalogOf(pool, back.table);
    const sumBefore = await legacyChecksum(pool, back.table);
    const spec = (t: { table: string; bare: string }) => ({
      kind: 'rollout',
      name: unique(c.kind),
      table: t.table,
      steps: [...c.steps(t.table, t.bare), { kind: 'approval', timeout: '5m' }, { kind: 'contract' }],
    });
    const a = await startSpec(client, taskQueue, spec(fwd));
    const b = await startSpec(client, taskQueue, spec(back));

    await waitForApproval(b.handle);
    await c.atApproval?.(pool, back.table, back.bare);
    await rollBack(b.handle, 'second run rolls back');
    const outB = await outcome(b.handle);
    expect(outB.state).toBe('rolled_back');
    expect(outB.result?.catalog?.map((x) => x.diff)).toEqual([[]]);
    expect(await catalogOf(pool, back.table)).toEqual(before);
    expect(await legacyChecksum(pool, back.table)).toBe(sumBefore);

    await waitForApproval(a.handle);
    await approve(a.handle);
    const outA = await outcome(a.handle);
    expect(outA).toMatchObject({ state: 'completed' });
    await c.after(pool, fwd.table, fwd.bare);
  },
);
