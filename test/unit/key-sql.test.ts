import { keyExpr, keyOrder, keyText, keyNotNull, storedKey, storedParams, cutSql } from '../../db/backfill/key-sql';
import type { KeyColumn } from '../../db/backfill/key-values';

// the SQL fragments over a backfill's key, one column or a row value: identifiers quoted, values only as $n
const one: KeyColumn[] = [{ name: 'id', type: 'bigint' }];
const two: KeyColumn[] = [
  { name: 'tenant_id', type: 'integer' },
  { name: 'code', type: 'text', collation: '"pg_catalog"."C"' },
];
const odd: KeyColumn[] = [{ name: 'Order Id', type: 'uuid' }];

describe('db/backfill/key-sql.ts fragments', () => {
  test.each<[string, () => string, string]>([
    ['keyExpr, one column', () => keyExpr(one), '"id"'],
    ['keyExpr, a row value', () => keyExpr(two), '("tenant_id", "code")'],
    ['keyExpr with an alias', () => keyExpr(two, 'c.'), '(c."tenant_id", c."code")'],
    ['keyExpr quotes a name with a space and capitals', () => keyExpr(odd), '"Order Id"'],
    ['keyOrder', () => keyOrder(two), '"tenant_id", "code"'],
    ['keyOrder descending', () => keyOrder(two, true), '"tenant_id" DESC, "code" DESC'],
    ['keyText, one column', () => keyText(one), '"id"::text'],
    ['keyText, a row value with an alias', () => keyText(two, 'c.'), 'json_build_array(c."tenant_id"::text, c."code"::text)::text'],
    ['keyNotNull', () => keyNotNull(two), '"tenant_id" IS NOT NULL AND "code" IS NOT NULL'],
    ['storedKey, one column', () => storedKey(one, 'lo'), '(lo)::bigint'],
    [
      'storedKey, a row value keeps the collation',
      () => storedKey(two, 'c.lo'),
      'ROW((c.lo::jsonb->>0)::integer, (c.lo::jsonb->>1)::text COLLATE "pg_catalog"."C")',
    ],
    ['storedParams, one column', () => storedParams(one, 3), '$3::bigint'],
    ['storedParams, a row value', () => storedParams(two, 3), 'ROW($3::integer, $4::text COLLATE "pg_catalog"."C")'],
  ])('%s', (_name, build, sql) => expect(build()).toBe(sql));

  test('cutSql: the key `size` rows on within [from, hi), its text made of the one row kept', () => {
    const sql = cutSql({ table: 'public.orders', cols: two }, ['$1', '$2'], ['$3', '$4'], '$5').replace(/\s+/g, ' ');
    expect(sql).toBe(
      '(SELECT json_build_array(c."tenant_id"::text, c."code"::text)::text FROM (SELECT "tenant_id", "code" FROM "public"."orders" ' +
        'WHERE ("tenant_id", "code") >= ROW($1::integer, $2::text) AND ("tenant_id", "code") < ROW($3::integer, $4::text) ' +
        'ORDER BY "tenant_id", "code" OFFSET $5 LIMIT 1) c)',
    );
    expect(cutSql({ table: 'orders', cols: one }, ['$1'], ['$2'], '$3').replace(/\s+/g, ' ')).toBe(
      '(SELECT c."id"::text FROM (SELECT "id" FROM "public"."orders" WHERE "id" >= $1::bigint AND "id" < $2::bigint ORDER BY "id" OFFSET $3 LIMIT 1) c)',
    );
  });
});
