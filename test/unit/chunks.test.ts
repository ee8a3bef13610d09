import { isCutByArithmetic, arithmeticChunkEnd, evenKeyPartitions, DENSE_ENOUGH } from '../../core/backfill/chunks';
import { at } from '../at';

describe('which partitions are cut by arithmetic', () => {
  const dense = { keyType: 'bigint', isKeyUnique: true, lo: '1', hi: '1001', rowsPlanned: 1000 };
  test.each([
    ['a dense unique bigint key', dense, true],
    ['an integer key at the density limit', { ...dense, keyType: 'integer', rowsPlanned: DENSE_ENOUGH * 1000 }, true],
    ['a smallint key', { ...dense, keyType: 'smallint' }, true],
    ['a key with gaps (half the values missing)', { ...dense, rowsPlanned: 500 }, false],
    ['a key that is not unique (a chunk could hold any number of rows)', { ...dense, isKeyUnique: false }, false],
    ['a date key', { ...dense, keyType: 'date', lo: '2026-01-01', hi: '2026-02-01' }, false],
    [
      'a timestamp key',
      { ...dense, keyType: 'timestamp with time zone', lo: '2026-01-01 00:00:00+00', hi: '2026-02-01 00:00:00+00' },
      false,
    ],
    ['an empty partition', { ...dense, hi: '1', rowsPlanned: 0 }, false],
    ['keys past 2^53', { ...dense, lo: '9007199254740993', hi: '9007199254741993' }, true],
  ] as const)('%s: %s', (_what, shape, expected) => expect(isCutByArithmetic(shape)).toBe(expected));
});

describe('arithmetic chunk ends', () => {
  test.each([
    ['1', '1001', 100, '101'],
    ['950', '1001', 100, '1001'], // the partition ends first
    ['-50', '1001', 100, '50'],
    ['9007199254740993', '9007199254750000', 5000, '9007199254745993'], // exact past 2^53: BigInt, not Number
  ] as const)('from %s below %s, %d rows: ends at %s', (lo, hi, size, end) => expect(arithmeticChunkEnd(lo, hi, size)).toBe(end));
});

describe('even key partitions', () => {
  test('split the span exactly, end to end, with rows spread by density', () => {
    const parts = evenKeyPartitions('1', '5000001', 8, 1);
    expect(parts).toHaveLength(8);
    expect(parts[0]).toEqual({ lo: '1', hi: '625001', rows: 625_000 });
    expect(at(parts, 7).hi).toBe('5000001');
    for (let i = 1; i < parts.length; i++) expect(at(parts, i).lo).toBe(at(parts, i - 1).hi);
    expect(parts.reduce((s, p) => s + p.rows, 0)).toBe(5_000_000);
  });
  test('a span shorter than the partition count gives one partition per key', () => {
    expect(evenKeyPartitions('10', '13', 8, 1)).toEqual([
      { lo: '10', hi: '11', rows: 1 },
      { lo: '11', hi: '12', rows: 1 },
      { lo: '12', hi: '13', rows: 1 },
    ]);
  });
  test('an empty range is one empty partition', () => expect(evenKeyPartitions('5', '5', 8, 1)).toEqual([{ lo: '5', hi: '5', rows: 0 }]));
  test('density above one (a stale estimate) counts one row per key at most', () => {
    expect(evenKeyPartitions('0', '100', 2, 1.3).map((p) => p.rows)).toEqual([50, 50]);
  });
});
