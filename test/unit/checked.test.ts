import { itemAt, onlyItem, present } from '../../core/common/checked';
import { oneRow } from '../../db/rows';
import { sha256Hex } from '../../core/common/hash';
import { parseDuration } from '../../core/common/duration';
import { createHash } from 'node:crypto';

describe('reading a value the code has shown is there', () => {
  test('itemAt gives the item at an index inside the list', () => {
    expect(itemAt(['a', 'b', 'c'], 2)).toBe('c');
    expect(itemAt(new Uint32Array([7, 8]), 0)).toBe(7);
    expect(itemAt([0, null], 1)).toBeNull(); // null and 0 are values, not missing ones
  });

  test.each([
    [-1, 'chunk -1 is missing: the list holds 2'],
    [2, 'chunk 2 is missing: the list holds 2'],
    [0.5, 'chunk 0.5 is missing: the list holds 2'],
  ])('itemAt outside the list (%s) throws a RangeError naming it', (index, message) => {
    expect(() => itemAt(['x', 'y'], index, 'chunk')).toThrow(new RangeError(message));
  });

  test('present passes a value on and names a missing one', () => {
    expect(present(0, 'count')).toBe(0);
    expect(present('', 'comment')).toBe('');
    expect(() => present(null, 'the index of constraint orders_pkey')).toThrow(
      new RangeError('the index of constraint orders_pkey is missing'),
    );
    expect(() => present(new Map<string, number>().get('a'), 'the lane of partition a')).toThrow(
      new RangeError('the lane of partition a is missing'),
    );
  });
});

test('onlyItem: the item of a one-item list, else undefined (one-column and composite keys)', () => {
  expect(onlyItem(['id'])).toBe('id');
  expect(onlyItem(['tenant_id', 'id'])).toBeUndefined();
  expect(onlyItem([])).toBeUndefined();
});

test('oneRow: the first row a statement returned, or an error naming what was read', () => {
  expect(oneRow({ rows: [{ n: '1' }, { n: '2' }] }, 'the count')).toEqual({ n: '1' });
  expect(() => oneRow({ rows: [] }, 'the new backfill b on public.orders')).toThrow(
    new Error('the new backfill b on public.orders: the statement returned no row'),
  );
});

describe('code rewritten for checked indexing answers as before', () => {
  test.each(['', 'abc', 'x'.repeat(55), 'x'.repeat(56), 'x'.repeat(64), 'é ✓ 😀 '.repeat(40)])(
    'sha256Hex matches node:crypto (%#)',
    (text) => {
      expect(sha256Hex(text)).toBe(createHash('sha256').update(text).digest('hex'));
    },
  );

  test('parseDuration reads every unit', () => {
    expect(parseDuration('1d2h3m4s5ms')).toBe(86_400_000 + 2 * 3_600_000 + 3 * 60_000 + 4 * 1000 + 5);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('3w')).toBeUndefined();
  });
});
