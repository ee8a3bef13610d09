import type { PoolClient } from 'pg';
import { createSyncTrigger, syncedBackfillTransform } from '../../db/rollout/sync-triggers';
import { bindRange } from '../../db/backfill/backfills';
import { pool, unique, useStack } from './harness';

/**
 * The alterColumn sync trigger against the real Postgres, for every kind of
 * up/down: the step's backfill and every old-version write leave the legacy
 * columns exactly as the application wrote them (checksum against a mirror
 * table that got the same application writes and has no trigger), and
 * new-version writes reach the legacy column through `down`.
 */

jest.setTimeout(120_000);

useStack();

interface Case {
  kind: string;
  newType: string;
  up: string;
  down: string;
  /** A value the new version writes, and what `down` must make of it in the legacy column (undefined: not predictable). */
  newValue: string;
  legacyOf?: number | null;
  /** The new version's default for "Qty" (the legacy default 7, in the new type). */
  newDefault?: string;
  /** Rows whose backfill or old-version write raises. */
  raisesOn?: (qty: number) => boolean;
}

// The legacy column is "Qty" int NOT NULL DEFAULT 7 of a mixed-case table; the new version calls its replacement "Qty" too.
const cases: Case[] = [
  // each down is lossy against its up (down(up(x)) is not x), so a trigger that sent backfilled rows back through down would show
  {
    kind: 'volatile (random)',
    newType: 'bigint',
    up: `"Qty"::bigint * 1000 + floor(random() * 1000)::bigint`,
    down: `round("Qty" / 1000.0)::int`,
    newValue: '42000',
    legacyOf: 42,
  },
  {
    kind: 'volatile (clock_timestamp)',
    newType: 'text',
    up: `"Qty"::text || '@' || clock_timestamp()::text`,
    down: `split_part("Qty", '@', 1)::int + 100`,
    newValue: `'13@x'`,
    legacyOf: 113,
  },
  {
    kind: 'volatile (gen_random_uuid)',
    newType: 'text',
    up: `gen_random_uuid()::text || ':' || "Qty"`,
    down: `split_part("Qty", ':', 2)::int + 1`,
    newValue: `'u:21'`,
    legacyOf: 22,
    newDefault: `'d:7'`,
  },
  { kind: 'volatile (nextval)', newType: 'bigint', up: `nextval('SEQ') + 1000`, down: `("Qty" % 1000)::int`, newValue: '8', legacyOf: 8 },
  {
    kind: 'stable (now)',
    newType: 'bigint',
    up: `"Qty"::bigint + extract(epoch FROM now())::bigint`,
    down: `("Qty" % 1000)::int`,
    newValue: '5',
    legacyOf: 5,
  },
  {
    kind: 'immutable',
    newType: 'numeric(12,2)',
    up: `"Qty"::numeric(12,2) / 3`,
    down: `floor("Qty" * 3)::int`,
    newValue: '2.5',
    legacyOf: 7,
  },
  {
    kind: 'NULL-producing',
    newType: 'bigint',
    up: `nullif("Qty", 3)::bigint * 2`,
    down: `coalesce("Qty", 3)::int`,
    newValue: 'NULL',
    legacyOf: null,
  },
  {
    kind: 'raising on some rows',
    newType: 'bigint',
    up: `CASE WHEN "Qty" = 5 THEN 1 / 0 ELSE "Qty" * 2 END::bigint`,
    down: `CASE WHEN "Qty" = 99 THEN 1 / 0 ELSE "Qty" END::int`,
    newValue: '6',
    legacyOf: 6,
    raisesOn: (q) => q === 5,
  },
];

const ROWS = 400;
const LEGACY = `md5(string_agg(concat_ws(':', id, "Qty", "Note"), ',' ORDER BY id))`;

async function tryBoth(table: string, mirror: string, sql: (t: string) => string): Promise<boolean> {
  try {
    await pool.query(sql(table));
  } catch {
    return false; // the write failed on the table: the application sees the error, and nothing was written
  }
  await pool.query(sql(mirror));
  return true;
}

async function inSession<T>(searchPath: string, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query(`SELECT set_config('search_path', $1, false)`, [searchPath]);
    return await fn(c);
  } finally {
    await c.query('RESET search_path');
    c.release();
  }
}

describe.each(cases)('alterColumn sync, $kind up/down', (c) => {
  it('backfill and old-version writes never change a legacy value; new-version writes reach it through down', async () => {
    const name = unique('Sync_T');
    const table = `public.${name}`;
    const q = `public."${name}"`;
    const mirror = `public."${name}_mirror"`;
    const viewSchema = `${name}_v2`.toLowerCase();
    const seq = `${name}_seq`;
    await pool.query(`CREATE SEQUENCE public."${seq}"`);
    await pool.query(`CREATE TABLE ${q} (id bigint PRIMARY KEY, "Qty" int NOT NULL DEFAULT 7, "Note" text)`);
    await pool.query(`INSERT INTO ${q} SELECT g, 1 + g % 9, 'n' || g FROM generate_series(1, ${ROWS}) g`);
    await pool.query(`CREATE TABLE ${mirror} (LIKE ${q} INCLUDING DEFAULTS)`);
    await pool.query(`INSERT INTO ${mirror} SELECT * FROM ${q}`);
    const up = c.up.replace('SEQ', `public."${seq}"`);

    // the expand: the new column, the trigger, the new version's view (its "Qty" is the new column, with the legacy default)
    await pool.query(`ALTER TABLE ${q} ADD COLUMN "Qty_stagefill_new" ${c.newType}`);
    await createSyncTrigger(pool, {
      table,
      oldColumn: 'Qty',
      newColumn: 'Qty_stagefill_new',
      up,
      down: c.down,
      newRow: [
        { source: 'id', as: 'id' },
        { source: 'Qty_stagefill_new', as: 'Qty' },
        { source: 'Note', as: 'Note' },
      ],
      newVersionSchemas: [viewSchema],
      name: `${name}_sync`.slice(0, 63),
    });
    await pool.query(`CREATE SCHEMA "${viewSchema}"`);
    await pool.query(`CREATE VIEW "${viewSchema}"."${name}" AS SELECT id, "Qty_stagefill_new" AS "Qty", "Note" FROM ${q}`);
    await pool.query(`ALTER VIEW "${viewSchema}"."${name}" ALTER COLUMN "Qty" SET DEFAULT ${c.newDefault ?? '7'}`);

    const legacy = async (t: string) => (await pool.query(`SELECT ${LEGACY} AS sum FROM ${t}`)).rows[0].sum as string;
    const before = await legacy(q);
    expect(before).toBe(await legacy(mirror));

    // the backfill, chunk by chunk, each its own transaction (a raising chunk rolls back)
    const transform = bindRange(syncedBackfillTransform(table, 'Qty_stagefill_new', up, 'id'), 'bigint');
    let failedChunks = 0;
    for (let lo = 1; lo <= ROWS; lo += 50) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(transform, [String(lo), String(lo + 50)]);
        await client.query('COMMIT');
      } catch {
        await client.query('ROLLBACK');
        failedChunks++;
      } finally {
        client.release();
      }
    }
    expect(failedChunks > 0).toBe(Boolean(c.raisesOn));
    expect(await legacy(q)).toBe(before);
    const filled = Number((await pool.query(`SELECT count(*) AS n FROM ${q} WHERE "Qty_stagefill_new" IS NOT NULL`)).rows[0].n);
    if (!c.raisesOn) expect(filled).toBeGreaterThan(ROWS * 0.8);

    // the setting was the backfill's transaction's only: a later write in the same session is a plain write
    expect((await pool.query(`SELECT current_setting('stagefill.writer', true) AS w`)).rows[0].w ?? '').not.toBe('backfill');

    // old-version writes (and plain writes to the table): the mirror gets the same ones
    const writes: ((t: string) => string)[] = [
      (t) => `UPDATE ${t} SET "Note" = 'changed ' || id WHERE id % 7 = 0`,
      (t) => `UPDATE ${t} SET "Qty" = "Qty" + 1 WHERE id % 11 = 0 AND "Qty" <> 4`,
      (t) => `UPDATE ${t} SET "Qty" = 3 WHERE id = 12`,
      (t) => `INSERT INTO ${t} (id, "Note") VALUES (${ROWS + 1}, 'defaulted')`,
      (t) => `INSERT INTO ${t} (id, "Qty", "Note") VALUES (${ROWS + 2}, 2, 'explicit')`,
      (t) => `INSERT INTO ${t} (id, "Qty", "Note") VALUES (${ROWS + 3}, 5, 'maybe raising')`,
      (t) => `UPDATE ${t} SET "Note" = "Note" || '!' WHERE id BETWEEN 1 AND 30`,
    ];
    const landed: boolean[] = [];
    for (const w of writes) landed.push(await tryBoth(q, mirror, w));
    expect(landed[5]).toBe(!c.raisesOn);
    expect(await legacy(q)).toBe(await legacy(mirror));
    // the old-version writes went forward: an updated "Qty" reached the new column
    const fwd = (await pool.query(`SELECT "Qty_stagefill_new" IS NOT NULL AS has FROM ${q} WHERE id = ${ROWS + 2}`)).rows[0];
    if (c.kind !== 'NULL-producing') expect(fwd.has).toBe(true);

    // the backfill ran again over everything (a retry, a second generation): still nothing legacy changes
    const snapshot = await legacy(q);
    for (let lo = 1; lo <= ROWS + 3; lo += 100) await pool.query(transform, [String(lo), String(lo + 100)]).catch(() => undefined);
    expect(await legacy(q)).toBe(snapshot);

    // new-version writes, through the view schema on the search_path: down reaches the legacy column
    await inSession(`"${viewSchema}", public`, async (s) => {
      await s.query(`UPDATE "${name}" SET "Qty" = ${c.newValue} WHERE id = 20`);
      await s.query(`INSERT INTO "${name}" (id, "Qty", "Note") VALUES (${ROWS + 10}, ${c.newValue}, 'new version')`);
      await s.query(`INSERT INTO "${name}" (id, "Note") VALUES (${ROWS + 11}, 'new version, default')`);
    });
    // and addressed by the qualified view name, without the search_path
    await pool.query(`UPDATE "${viewSchema}"."${name}" SET "Qty" = ${c.newValue} WHERE id = 21`);
    const rows = (await pool.query(`SELECT id, "Qty" AS legacy FROM ${q} WHERE id IN (20, 21, ${ROWS + 10}, ${ROWS + 11}) ORDER BY id`))
      .rows;
    const downOfDefault = (await pool.query(`SELECT (${c.down}) AS v FROM (SELECT (${c.newDefault ?? '7'})::${c.newType} AS "Qty") AS _r`))
      .rows[0].v;
    const want = c.legacyOf === null ? 3 : c.legacyOf; // NULL in the new version: down gives 3
    // an INSERT whose new column is NULL is one that left the column out (a trigger cannot tell an explicit NULL from
    // that): the legacy column keeps its default, 7, as the old schema would give it (docs/alter-column.md)
    const inserted = c.legacyOf === null ? 7 : want;
    expect(rows.map((r) => r.legacy)).toEqual([want, want, inserted, downOfDefault]);
    // the rows no one touched still hold exactly their legacy values
    const untouched = `WHERE id NOT IN (20, 21) AND id <= ${ROWS + 3}`;
    expect((await pool.query(`SELECT ${LEGACY} AS sum FROM ${q} ${untouched}`)).rows[0].sum).toBe(
      (await pool.query(`SELECT ${LEGACY} AS sum FROM ${mirror} ${untouched}`)).rows[0].sum,
    );
  });
});
