import type { PoolClient } from 'pg';
import { readColumnObjects } from '../../db/rollout/column-objects';
import { runDuplicationStatement } from '../../db/rollout/duplicate';
import { createSyncTrigger, syncedBackfillTransform } from '../../db/rollout/sync-triggers';
import { bindRange } from '../../db/backfill/backfills';
import { planDuplication, contractActions } from '../../core/rollout/alter-column/duplicate';
import type { DuplicationPlan } from '../../core/rollout/alter-column/duplication-types';
import { checkContract } from '../../core/rollout/alter-column/contract-check';
import { newVersionRow } from '../../core/rollout/columns';
import { pool, unique, useStack } from './harness';
import { leftovers, refused } from './rollout-harness';

/**
 * The catalog reader and the duplication plan against the real Postgres: a
 * column with every kind of object, carried over to a new column of a new
 * type while a writer keeps writing through the old version, contracted,
 * and afterwards every object exists over the new column and enforces.
 */

jest.setTimeout(120_000);

/** Runs `fn` in a transaction on a connection of its own: committed when it returns (rolled back with `keep` false), rolled back when it throws. */
async function transaction(fn: (c: PoolClient) => Promise<void>, keep = true): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await fn(c);
    await c.query(keep ? 'COMMIT' : 'ROLLBACK');
  } catch (err) {
    await c.query('ROLLBACK');
    throw err;
  } finally {
    c.release();
  }
}

useStack();

const names = (xs: { name: string }[]) => xs.map((x) => x.name).sort();

/** The whole alterColumn + contract at the db level, as the step modules run it. */
async function runThrough(
  table: string,
  column: string,
  newColumn: string,
  newType: string,
  up: string,
  down: string,
  finalName = column,
  writer?: () => Promise<void>,
): Promise<{ plan: DuplicationPlan; contract: ReturnType<typeof checkContract> }> {
  const old = await readColumnObjects(pool, table, column);
  const plan = planDuplication(old, newColumn, { newType, finalName });
  expect(plan.problems).toEqual([]);
  const q = `public."${table.split('.')[1]}"`;
  const physical = (
    await pool.query(`SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, [
      q,
    ])
  ).rows.map((r) => r.attname);

  // expand: one transaction
  await transaction(async (c) => {
    await c.query(`ALTER TABLE ${q} ADD COLUMN "${newColumn}" ${newType}`);
    await createSyncTrigger(c, {
      table,
      oldColumn: column,
      newColumn,
      up,
      down,
      newRow: newVersionRow([...physical, newColumn], [{ column, newName: finalName === column ? undefined : finalName }]),
      newVersionSchemas: [],
      name: `sync_${newColumn}`.slice(0, 60),
    });
    for (const a of plan.actions.filter((x) => x.phase === 'expand')) await runDuplicationStatement(c, a);
  });
  await writer?.();
  // backfill
  const transform = bindRange(syncedBackfillTransform(table, newColumn, up, 'id'), 'bigint');
  for (let lo = 0; lo < 2000; lo += 100) {
    await pool.query(transform, [String(lo), String(lo + 100)]); // its own transaction
    await writer?.();
  }
  for (const a of plan.actions.filter((x) => x.phase === 'afterBackfill')) {
    await runDuplicationStatement(pool, a);
    await writer?.();
  }

  // contract: checked, then one transaction
  const contract = checkContract(await readColumnObjects(pool, table, column), await readColumnObjects(pool, table, newColumn), plan);
  expect(contract.missing).toEqual([]);
  const { beforeDrop, afterDrop } = contractActions(plan);
  await transaction(async (k) => {
    await k.query(`SELECT set_config('lock_timeout', '2000ms', true)`);
    await k.query(`DROP TRIGGER "${`sync_${newColumn}`.slice(0, 60)}" ON ${q}`);
    for (const a of beforeDrop) await runDuplicationStatement(k, a);
    await k.query(`ALTER TABLE ${q} DROP COLUMN "${column}"`);
    if (newColumn !== finalName) await k.query(`ALTER TABLE ${q} RENAME COLUMN "${newColumn}" TO "${finalName}"`);
    for (const a of afterDrop) await runDuplicationStatement(k, a);
  });
  for (const a of plan.actions.filter((x) => x.phase === 'afterContract')) await runDuplicationStatement(pool, a);
  return { plan, contract };
}

describe('every object of a column carried to its new version', () => {
  it('reads NOT NULL, default, CHECKs, UNIQUEs, indexes, both FKs, comment and privileges, and contract leaves all of them on the new column', async () => {
    const t = unique('objs');
    const q = `public."${t}"`;
    await pool.query(`CREATE TABLE public."${t}_sizes" (n int PRIMARY KEY)`);
    await pool.query(`INSERT INTO public."${t}_sizes" SELECT g FROM generate_series(0, 5000) g`);
    await pool.query(`CREATE TABLE ${q} (
      id bigint PRIMARY KEY,
      customer int NOT NULL,
      qty int NOT NULL DEFAULT 1 CONSTRAINT qty_nonneg CHECK (qty >= 0) CONSTRAINT qty_unique UNIQUE CONSTRAINT qty_size REFERENCES public."${t}_sizes" (n),
      cap int NOT NULL DEFAULT 100000,
      CONSTRAINT qty_under_cap CHECK (qty <= cap),
      CONSTRAINT customer_qty UNIQUE (customer, qty))`);
    await pool.query(`CREATE INDEX "${t}_big" ON ${q} (qty) WHERE qty > 1000`);
    await pool.query(`CREATE INDEX "${t}_twice" ON ${q} ((qty * 2), customer)`);
    await pool.query(`COMMENT ON COLUMN ${q}.qty IS 'how many; never negative'`);
    await pool.query(`GRANT SELECT (qty), UPDATE (qty) ON ${q} TO PUBLIC`);
    await pool.query(`CREATE TABLE public."${t}_child" (id int PRIMARY KEY, qty_ref int CONSTRAINT child_qty REFERENCES ${q} (qty))`);
    await pool.query(`INSERT INTO ${q} SELECT g, g % 10, g, 100000 FROM generate_series(1, 1500) g`);
    await pool.query(`INSERT INTO public."${t}_child" SELECT g, g FROM generate_series(1, 100) g`);

    const o = await readColumnObjects(pool, `public.${t}`, 'qty');
    expect(o).toMatchObject({
      exists: true,
      type: 'integer',
      notNull: true,
      default: '1',
      identity: null,
      comment: 'how many; never negative',
    });
    expect(names(o.checks)).toEqual(['qty_nonneg', 'qty_under_cap']);
    expect(o.checks.find((c) => c.name === 'qty_under_cap')!.columns.sort()).toEqual(['cap', 'qty']);
    expect(names(o.uniques)).toEqual(['customer_qty', 'qty_unique']);
    expect(o.uniques.find((u) => u.name === 'customer_qty')!.columns).toEqual(['customer', 'qty']);
    expect(names(o.indexes)).toEqual([`${t}_big`, `${t}_twice`]);
    expect(o.indexes.find((x) => x.name === `${t}_big`)!.indexTail).toBe('USING btree (qty) WHERE (qty > 1000)');
    expect(o.foreignKeys.map((f) => [f.name, f.refTable, f.refColumns])).toEqual([['qty_size', `public.${t}_sizes`, ['n']]]);
    expect(o.referencedBy.map((f) => [f.name, f.table, f.columns, f.refColumns])).toEqual([
      ['child_qty', `public.${t}_child`, ['qty_ref'], ['qty']],
    ]);
    expect(o.privileges.map((p) => `${p.grantee}:${p.privilege}`)).toEqual(['PUBLIC:SELECT', 'PUBLIC:UPDATE']);

    // a writer through the old version all along
    let n = 1500;
    const writer = async () => {
      n++;
      await pool.query(`INSERT INTO ${q} (id, customer, qty) VALUES ($1, 3, $2)`, [n, n]);
      await pool.query(`UPDATE ${q} SET qty = qty + 0, customer = customer WHERE id = $1`, [n - 700]);
    };
    const { contract } = await runThrough(`public.${t}`, 'qty', 'qty_stagefill_new', 'bigint', 'qty::bigint', 'qty::int', 'qty', writer);
    expect(contract.changes.map((c) => `${c.action} ${c.object}`)).toEqual(
      expect.arrayContaining([
        `drop column public.${t}.qty`,
        'rename column qty_stagefill_new',
        'attach UNIQUE customer_qty',
        'attach UNIQUE qty_unique',
        `recreate FOREIGN KEY child_qty of public.${t}_child`,
      ]),
    );

    // afterwards: the new qty has every object, under the original names
    const after = await readColumnObjects(pool, `public.${t}`, 'qty');
    expect(after).toMatchObject({
      exists: true,
      type: 'bigint',
      notNull: true,
      default: '(1)::bigint',
      comment: 'how many; never negative',
    });
    expect(names(after.checks)).toEqual(['qty_nonneg', 'qty_under_cap']);
    expect(after.checks.every((c) => c.isValid)).toBe(true);
    expect(names(after.uniques)).toEqual(['customer_qty', 'qty_unique']);
    expect(after.uniques.find((u) => u.name === 'customer_qty')!.columns).toEqual(['customer', 'qty']);
    expect(names(after.indexes)).toEqual([`${t}_big`, `${t}_twice`]);
    expect(after.indexes.find((x) => x.name === `${t}_twice`)!.indexTail).toBe('USING btree (((qty * 2)), customer)');
    expect(after.foreignKeys.map((f) => [f.name, f.isValid])).toEqual([['qty_size', true]]);
    expect(after.referencedBy.map((f) => [f.name, f.isValid])).toEqual([['child_qty', true]]);
    expect(after.privileges.map((p) => `${p.grantee}:${p.privilege}`)).toEqual(['PUBLIC:SELECT', 'PUBLIC:UPDATE']);
    expect(await leftovers(pool, t)).toEqual([]);

    // ... and each one enforces
    const id = 100_000;
    await refused(`INSERT INTO ${q} (id, customer, qty) VALUES (${id}, 1, NULL)`, '23502'); // NOT NULL
    await refused(`INSERT INTO ${q} (id, customer, qty) VALUES (${id}, 1, -1)`, '23514'); // CHECK qty_nonneg
    await refused(`INSERT INTO ${q} (id, customer, qty, cap) VALUES (${id}, 1, 4000, 10)`, '23514'); // CHECK qty_under_cap (two columns)
    await refused(`INSERT INTO ${q} (id, customer, qty) VALUES (${id}, 1, 5)`, '23505'); // UNIQUE qty_unique
    await refused(`INSERT INTO ${q} (id, customer, qty) VALUES (${id}, 1, 99999)`, '23503'); // FOREIGN KEY qty_size
    await refused(`INSERT INTO public."${t}_child" VALUES (1000, 4999)`, '23503'); // the incoming FOREIGN KEY
    await refused(`DELETE FROM ${q} WHERE qty = 7`, '23503'); // referenced by child
    await pool.query(`DELETE FROM public."${t}_child" WHERE qty_ref = 1`);
    await pool.query(`DELETE FROM ${q} WHERE qty = 1`);
    const { rows } = await pool.query(`INSERT INTO ${q} (id, customer) VALUES (${id}, 1) RETURNING qty`);
    expect(rows[0].qty).toBe('1'); // the default (bigint now)
    await pool.query(`DELETE FROM ${q} WHERE id = ${id}`);
    // the two-column UNIQUE on its own (the single-column one, and the key that needs it, set aside in a transaction rolled back)
    await transaction(async (c) => {
      await c.query(`ALTER TABLE public."${t}_child" DROP CONSTRAINT child_qty`);
      await c.query(`ALTER TABLE ${q} DROP CONSTRAINT qty_unique`);
      await c.query(`UPDATE ${q} SET customer = 9 WHERE id = 19`); // (9, 19): free
      await expect(c.query(`UPDATE ${q} SET qty = 9 WHERE id = 19`)).rejects.toMatchObject({ code: '23505', constraint: 'customer_qty' });
    }, false);
    expect(after.indexes.find((x) => x.name === `${t}_big`)).toMatchObject({
      isValid: true,
      indexTail: 'USING btree (qty) WHERE (qty > 1000)',
    });
  });

  it('an identity column keeps its identity, primary key and incoming keys, continuing its sequence', async () => {
    const t = unique('Ident');
    const q = `public."${t}"`;
    await pool.query(`CREATE TABLE ${q} (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text)`);
    await pool.query(`INSERT INTO ${q} (note) SELECT 'n' || g FROM generate_series(1, 300) g`);
    await pool.query(`CREATE TABLE public."${t}_child" (id int PRIMARY KEY, "parentId" int REFERENCES ${q} (id))`);
    await pool.query(`INSERT INTO public."${t}_child" VALUES (1, 1), (2, 300)`);
    const o = await readColumnObjects(pool, `public.${t}`, 'id');
    expect(o).toMatchObject({ identity: 'a', notNull: true });
    expect(o.sequence).toContain(`${t}_id_seq`);
    expect(o.uniques.map((u) => u.kind)).toEqual(['primaryKey']);

    await runThrough(`public.${t}`, 'id', 'id_stagefill_new', 'bigint', 'id::bigint', 'id::int');
    const after = await readColumnObjects(pool, `public.${t}`, 'id');
    expect(after).toMatchObject({ type: 'bigint', identity: 'a', notNull: true });
    expect(after.uniques.map((u) => [u.name, u.kind])).toEqual([[`${t}_pkey`, 'primaryKey']]);
    expect(after.referencedBy.map((f) => f.isValid)).toEqual([true]);
    const { rows } = await pool.query(`INSERT INTO ${q} (note) VALUES ('next') RETURNING id`);
    expect(Number(rows[0].id)).toBe(301);
    expect(await leftovers(pool, t)).toEqual([]);
    await refused(`INSERT INTO ${q} (id, note) VALUES (5, 'x')`, '428C9'); // GENERATED ALWAYS
    await refused(`INSERT INTO public."${t}_child" VALUES (3, 5000)`, '23503');
  });

  it('a CHECK that does not hold over the new type stops the expand before any data moves, naming the check', async () => {
    const t = unique('badcheck');
    const q = `public."${t}"`;
    await pool.query(`CREATE TABLE ${q} (id bigint PRIMARY KEY, code text CONSTRAINT code_shape CHECK (code ~ '^[A-Z]+$') DEFAULT 'AB')`);
    await pool.query(`INSERT INTO ${q} VALUES (1, 'X')`);
    const o = await readColumnObjects(pool, `public.${t}`, 'code');
    const plan = planDuplication(o, 'code_stagefill_new', { newType: 'bigint' });
    const check = plan.actions.find((a) => a.phase === 'expand' && a.object === 'CHECK code_shape')!;
    await transaction(async (c) => {
      await c.query(`ALTER TABLE ${q} ADD COLUMN code_stagefill_new bigint`);
      await expect(runDuplicationStatement(c, check)).rejects.toThrow(/operator does not exist: bigint ~/);
    }, false);
    expect(check.fix).toContain('CHECK code_shape');
    const dflt = plan.actions.find((a) => a.op === 'checkDefault')!;
    await expect(runDuplicationStatement(pool, dflt)).rejects.toThrow(/invalid input syntax|cannot/);
    expect(dflt.fix).toContain("the default 'AB'::text does not convert to bigint");
  });
});
