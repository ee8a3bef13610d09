import {
  keyNames,
  keyLabel,
  encodeKeyType,
  decodeKeyType,
  keyTypeLabel,
  formatKey,
  formatRange,
  parseKeyInput,
} from '../../core/backfill/keys';
import {
  encodeKey,
  decodeKey,
  canonicalKey,
  bindRange,
  rangeValues,
  keyParams,
  uuidAfter,
  successorKind,
} from '../../db/backfill/key-values';
import { replayPartitions, partsPerLeaf, inKeyOrder, leavesChanged } from '../../core/backfill/chunks';
import { adaptedChunkSize } from '../../core/backfill/throttle';
import { chunkEnd, KeyRunTooLong } from '../../db/backfill/key-chunks';
import { parseBackfillSpec } from '../../steps/spec';

const base = { kind: 'backfill', name: 'b', table: 't', chunkSize: 10, transform: 'UPDATE t SET n = 1 WHERE id >= :lo AND id < :hi' };

describe('spec key', () => {
  test.each([
    ['one column', 'id', 'id'],
    ['a list of columns', ['tenant_id', 'id'], ['tenant_id', 'id']],
    ['a list of one column is that column', ['id'], 'id'],
  ] as const)('%s', (_what, key, parsed) => expect(parseBackfillSpec({ ...base, key }).key).toEqual(parsed));
  test.each([
    ['an empty list', [], /key needs at least one column/],
    ['a column named twice', ['id', 'id'], /key must not name a column twice/],
    ['a quoted name', ['"id"'], /key\[\]? must be a plain SQL identifier|plain SQL identifier/],
    ['a number', 3, /key: Expected string/],
  ] as const)('refuses %s', (_what, key, message) => expect(() => parseBackfillSpec({ ...base, key })).toThrow(message));
  test('a composite range value is kept as the JSON of its parts', () => {
    expect(parseBackfillSpec({ ...base, key: ['a', 'b'], range: { from: [3, 'x'], to: '(4, 1)' } }).range).toEqual({
      from: '["3","x"]',
      to: '(4, 1)',
    });
  });
});

describe('key names and types', () => {
  test.each([
    ['id', ['id'], 'id'],
    [['tenant_id', 'id'], ['tenant_id', 'id'], '(tenant_id, id)'],
  ] as const)('%j', (key, names, label) => {
    expect(keyNames(key)).toEqual(names);
    expect(keyLabel(key)).toBe(label);
  });
  test.each([
    ['a plain one-column type stays as it was stored before', [{ type: 'bigint' }], 'bigint'],
    [
      'a collated column',
      [{ type: 'text', collation: '"pg_catalog"."en-US-x-icu"' }],
      '["text COLLATE \\"pg_catalog\\".\\"en-US-x-icu\\""]',
    ],
    ['a composite key', [{ type: 'integer' }, { type: 'timestamp with time zone' }], '["integer","timestamp with time zone"]'],
  ] as const)('%s: encoded and decoded back', (_what, cols, encoded) => {
    expect(encodeKeyType(cols)).toBe(encoded);
    const names = cols.map((_, i) => `c${i}`);
    expect(decodeKeyType(encoded, names)).toEqual(cols.map((c, i) => ({ name: names[i], ...c })));
  });
  test('types for people', () => {
    expect(keyTypeLabel('bigint')).toBe('bigint');
    expect(keyTypeLabel('["integer","bigint"]')).toBe('integer, bigint');
  });
  test('a key type with a different column count than the key is an error', () =>
    expect(() => decodeKeyType('["integer","bigint"]', ['id'])).toThrow(/2 columns/));
});

describe('stored key values', () => {
  test.each([
    [['42'], '42'],
    [['3', '1200'], '["3","1200"]'],
    [['a,b', 'x"y'], '["a,b","x\\"y"]'],
  ] as const)('%j <-> %s', (values, stored) => {
    expect(encodeKey(values)).toBe(stored);
    expect(decodeKey(stored, values.length)).toEqual(values);
  });
  test("the database's json text is made canonical", () => expect(canonicalKey('["3", "1200"]', 2)).toBe('["3","1200"]'));
  test('a one-column value is never parsed', () => expect(canonicalKey('["3", "1200"]', 1)).toBe('["3", "1200"]'));
  test('a value of the wrong arity is an error', () => expect(() => decodeKey('["3"]', 2)).toThrow(/not a 2-column key/));
});

describe('key values for people', () => {
  test.each([
    ['1200', 1, '1200'],
    ['(a, b)', 1, '(a, b)'],
    ['["3","1200"]', 2, '(3, 1200)'],
    ['["a,b","c d"]', 2, '("a,b", "c d")'],
    ['["x",""]', 2, '(x, "")'],
    ['not json', 2, 'not json'],
  ] as const)('%s (%d columns) reads %s', (stored, n, shown) => expect(formatKey(stored, n)).toBe(shown));
  test('ranges are half open', () => expect(formatRange('["1","2"]', '["3","4"]', 2)).toBe('[(1, 2), (3, 4))'));
  test.each([
    ['(3, 1200)', ['3', '1200']],
    ['3,1200', ['3', '1200']],
    ['["3","1200"]', ['3', '1200']],
    ['[3, 1200]', ['3', '1200']],
    ['("a, b", "say ""hi""")', ['a, b', 'say "hi"']],
    ['( 2026-01-01 , x )', ['2026-01-01', 'x']],
  ] as const)('typed %s', (input, parts) => expect(parseKeyInput(input, 2)).toEqual(parts));
  test('a one-column key takes the text as it is', () => expect(parseKeyInput('(a, b)', 1)).toEqual(['(a, b)']));
  test('a tuple of the wrong size is refused with an example', () => expect(() => parseKeyInput('(1, 2, 3)', 2)).toThrow(/\(v1, v2\)/));
});

describe(':lo and :hi bound as typed parameters', () => {
  const one = [{ name: 'id', type: 'bigint' }];
  const two = [
    { name: 'tenant_id', type: 'integer' },
    { name: 'id', type: 'uuid' },
  ];
  test('one column: $1 and $2, as always', () =>
    expect(bindRange('WHERE id >= :lo AND id < :hi', one)).toBe('WHERE id >= $1::bigint AND id < $2::bigint'));
  test('a composite key: row values', () => {
    expect(bindRange('WHERE (tenant_id, id) >= :lo AND (tenant_id, id) < :hi', two)).toBe(
      'WHERE (tenant_id, id) >= ROW($1::integer, $2::uuid) AND (tenant_id, id) < ROW($3::integer, $4::uuid)',
    );
    expect(rangeValues('["1","a"]', '["2","b"]', 2)).toEqual(['1', 'a', '2', 'b']);
  });
  test('a cast (::lo) is not a placeholder', () => expect(bindRange("SELECT 'x'::lo, :lo", one)).toBe("SELECT 'x'::lo, $1::bigint"));
  test('parameters may start anywhere', () => expect(keyParams(two, 5)).toBe('ROW($5::integer, $6::uuid)'));
});

describe('the open end past the largest key', () => {
  test.each([
    ['00000000-0000-0000-0000-000000000000', '00000000-0000-0000-0000-000000000001'],
    ['0000000f-ffff-ffff-ffff-ffffffffffff', '00000010-0000-0000-0000-000000000000'],
    ['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'],
  ])('uuid after %s is %s', (u, next) => expect(uuidAfter(u)).toBe(next));
  test('no uuid after the largest', () => expect(uuidAfter('ffffffff-ffff-ffff-ffff-ffffffffffff')).toBeUndefined());
  test.each([
    ['bigint', 'plus-one'],
    ['numeric', 'plus-one'],
    ['date', 'plus-one'],
    ['timestamp with time zone', 'plus-microsecond'],
    ['time without time zone', 'plus-microsecond'],
    ['double precision', 'infinity'],
    ['uuid', 'uuid'],
    ['character varying', 'text'],
    ['bytea', 'bytea'],
    ['inet', 'none'],
  ])('%s: %s', (type, kind) => expect(successorKind(type)).toBe(kind));
});

describe('chunk ends on keys that repeat', () => {
  test('the cut ends the chunk', () => expect(chunkEnd('10', '99', '25', 5)).toBe('25'));
  test('no cut: the chunk runs to the partition end', () => expect(chunkEnd('10', '99', null, 5)).toBe('99'));
  test('a cut at lo (more than a chunk of rows share the value) is refused, never run over its size', () => {
    expect(() => chunkEnd('10', '99', '10', 5)).toThrow(KeyRunTooLong);
  });
});

describe('chunk size toward targetChunkMs', () => {
  const t = { targetChunkMs: 100, minChunkSize: 100, maxChunkSize: 10_000 };
  test.each([
    [1000, 100, 1000],
    [1000, 50, 2000], // at most 2x up
    [1000, 10, 2000],
    [1000, 400, 500], // at most 2x down
    [150, 400, 100], // never below the minimum
    [8000, 10, 10_000], // never above the maximum
  ])('%d rows in %d ms: next %d', (size, ms, next) => expect(adaptedChunkSize(t, size, ms)).toBe(next));
});

describe('replay partitions', () => {
  test('recorded chunks grouped by partition, each re-run as recorded', () => {
    const chunks = [
      { lo: '1', hi: '5', partition_no: 0, rows: '4' },
      { lo: '5', hi: '9', partition_no: 0, rows: '4' },
      { lo: '20', hi: '30', partition_no: 2, rows: 10 },
    ];
    expect(replayPartitions(chunks)).toEqual([
      {
        lo: '1',
        hi: '9',
        rows: 8,
        fixedChunks: [
          ['1', '5'],
          ['5', '9'],
        ],
      },
      { lo: '20', hi: '30', rows: 10, fixedChunks: [['20', '30']] },
    ]);
  });
});

describe('partitioned tables', () => {
  test.each([
    [8, [100, 100, 100, 100], [2, 2, 2, 2]],
    [8, [700, 100, 100, 100], [6, 1, 1, 1]], // at least one each
    [8, [-1, -1], [4, 4]], // never analyzed: shared evenly
    [1, [10, 10, 10], [1, 1, 1]],
  ])('%d parts over leaves of %j rows: %j', (parts, estimates, shares) => expect(partsPerLeaf(parts, estimates)).toEqual(shares));
  test('leaf spans in key order from how they chain', () => {
    const spans = [
      { leaf: 'c', lo: '["3","1"]', hi: '["4","0"]' },
      { leaf: 'a', lo: '["1","1"]', hi: '["2","0"]' },
      { leaf: 'b', lo: '["2","0"]', hi: '["3","1"]' },
    ];
    expect(inKeyOrder(spans).map((s) => s.leaf)).toEqual(['a', 'b', 'c']);
  });
  test.each([
    [null, ['x'], undefined],
    [['a', 'b'], ['a', 'b'], undefined],
    [['a', 'b'], ['a', 'b', 'c'], 'attached: c'],
    [['a', 'b'], ['a'], 'detached: b'],
    [['a', 'b'], ['a', 'c'], 'attached: c; detached: b'],
    [['a'], null, 'detached: a'],
  ])('planned %j, now %j: %s', (planned, now, changed) => expect(leavesChanged(planned, now)).toBe(changed));
});
