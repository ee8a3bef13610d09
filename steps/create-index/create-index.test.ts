import { createIndex } from './plan';
import { createIndexStep } from './schema';
import { indexNameOf, derivedName } from '../../core/rollout/object-names';
import { createIndexStatement } from './sql';
import { parseRolloutSpec } from '../spec';

const ctx = { id: 'ix', table: 'public.orders', rollbackWindowMs: 0 };
const parse = (step: object) =>
  parseRolloutSpec({ kind: 'rollout', name: 'r', table: 'orders', steps: [{ kind: 'createIndex', ...step }] }).steps[0];

describe('createIndex', () => {
  test('statement: mixed-case columns quoted, method, INCLUDE, storage parameters, partial WHERE, CONCURRENTLY', () => {
    expect(
      createIndexStatement({
        table: 'public.orders',
        name: 'Orders_Ref',
        method: 'btree',
        columns: ['CustomerRef', 'status'],
        include: ['Amount'],
        where: 'qty > 1',
        with: { fillfactor: 70, deduplicate_items: false },
      }),
    ).toBe(
      'CREATE INDEX CONCURRENTLY "Orders_Ref" ON "public"."orders" USING "btree" ("CustomerRef", "status") INCLUDE ("Amount") WITH ("fillfactor" = 70, "deduplicate_items" = off) WHERE (qty > 1)',
    );
    expect(
      createIndexStatement({ table: 'app.t', name: 'u', unique: true, expressions: ['lower(email)'], with: { buffering: 'auto' } }),
    ).toBe(`CREATE UNIQUE INDEX CONCURRENTLY "u" ON "app"."t" USING "btree" ((lower(email))) WITH ("buffering" = 'auto')`);
  });

  test('default name: <table>_<columns>_idx; a long one is cut to 63 characters with a hash, so two do not collide', () => {
    expect(indexNameOf({ columns: ['CustomerRef', 'status'] }, 'public.orders')).toBe('orders_CustomerRef_status_idx');
    const long1 = derivedName('public.' + 'x'.repeat(50), ['a'.repeat(30), 'b'], 'idx');
    const long2 = derivedName('public.' + 'x'.repeat(50), ['a'.repeat(30), 'c'], 'idx');
    expect(long1.length).toBeLessThanOrEqual(63);
    expect(long1).not.toBe(long2);
    expect(long1.endsWith('_idx')).toBe(true);
    expect(indexNameOf({ expressions: ['lower(a)'] }, 'orders')).toMatch(/^orders_expr_[0-9a-f]{8}_idx$/);
    expect(indexNameOf({ name: 'mine', columns: ['a'] }, 'orders')).toBe('mine');
  });

  test('plan: the concurrent build, its revert, SHARE UPDATE EXCLUSIVE, online', () => {
    const p = createIndex.describe(
      createIndexStep.parse({ kind: 'createIndex', columns: ['status'], where: 'qty > 1', with: { fillfactor: 70 } }),
      ctx,
    );
    expect(p.forward).toBe(
      'CREATE INDEX CONCURRENTLY orders_status_idx USING btree (status) WITH (fillfactor = 70) WHERE qty > 1, outside a transaction; an INVALID leftover of an earlier attempt is dropped first',
    );
    expect(p.rollback).toBe('DROP INDEX CONCURRENTLY orders_status_idx');
    expect(p.lock).toMatch(/^SHARE UPDATE EXCLUSIVE/);
    expect(p.online).toBe(true);
  });

  test.each([
    [{}, 'steps.0.columns: createIndex needs columns or expressions'],
    [{ columns: ['a'], unique: true, method: 'gin' }, 'steps.0.unique: only btree indexes can be unique'],
    [{ columns: ['a'], include: ['b'], method: 'brin' }, 'steps.0.include: include works with btree and gist'],
    [{ columns: ['a', 'b'], method: 'hash' }, 'a hash index has exactly one key'],
    [{ columns: ['a'], method: 'spgist' }, 'method must be one of btree, gin, gist, brin, hash'],
    [{ columns: ['a b'] }, 'columns[] must be a plain SQL identifier'],
    [{ columns: ['a'], with: { 'fill factor': 1 } }, 'parameter names are lower-case words'],
    [{ columns: ['a'], where: 'a > 1; drop table t' }, 'where must be one SQL expression'],
  ])('schema refuses %j', (step, message) => expect(() => parse(step)).toThrow(message));

  test('schema: method defaults to btree; mixed-case columns are fine', () =>
    expect(parse({ columns: ['MixedCase'] })).toMatchObject({ method: 'btree', columns: ['MixedCase'] }));
});
