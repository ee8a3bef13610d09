import { parseTable, qualifiedName, qualifiedName as fromIds } from '../../core/common/table-name';
import { backfillSummary, backfillMemoSummary, rolloutTables } from '../../steps/summary';
import { parseBackfillSpec, parseRolloutSpec } from '../../steps/spec';
import { errorExit } from './error-exit';
import { at } from '../at';

describe('the one table-name normaliser', () => {
  test.each([
    ['orders', { schema: 'public', name: 'orders' }, 'public.orders'],
    ['public.orders', { schema: 'public', name: 'orders' }, 'public.orders'],
    ['sales.orders', { schema: 'sales', name: 'orders' }, 'sales.orders'],
    ['Sales.Orders', { schema: 'Sales', name: 'Orders' }, 'Sales.Orders'],
    ['a.b.c (the first dot splits)', { schema: 'a', name: 'b.c' }, 'a.b.c'],
  ])('%s', (input, ref, name) => {
    const t = at(input.split(' '), 0);
    expect(parseTable(t)).toEqual(ref);
    expect(qualifiedName(t)).toBe(name);
    expect(qualifiedName(ref)).toBe(name);
    expect(fromIds(t)).toBe(name); // the old export answers the same
  });
});

describe('one memo summary per run kind', () => {
  const spec = parseBackfillSpec({
    kind: 'backfill',
    name: 'total',
    table: 'orders',
    key: 'id',
    chunkSize: 1000,
    transform: 'UPDATE orders SET n = 1 WHERE id >= :lo AND id < :hi',
    window: { start: '01:00', duration: '4h', timeZone: 'Europe/Berlin' },
  });
  test('the client (before the run) and the workflow (after preparing) build it alike', () => {
    const before = backfillSummary(spec, { transformHash: 'abc' });
    const after = backfillMemoSummary(spec, 'public.orders', { transformHash: 'abc', generation: 2, rowsTotal: 10, continued: true });
    expect(before).toMatchObject({
      kind: 'backfill',
      name: 'total',
      table: 'public.orders',
      key: 'id',
      transformHash: 'abc',
      window: '01:00 for 14400000ms Europe/Berlin',
    });
    expect(after).toEqual({ ...before, generation: 2, rowsTotal: 10, continued: true });
    expect(Object.keys(after)).toEqual([
      'kind',
      'name',
      'table',
      'key',
      'chunkSize',
      'parallelism',
      'transformHash',
      'generation',
      'range',
      'rowsTotal',
      'window',
      'continued',
    ]);
  });
  test('a rollout names every table it touches, canonical and once', () => {
    const r = parseRolloutSpec({
      kind: 'rollout',
      name: 'r',
      table: 'orders',
      steps: [
        { id: 'a', kind: 'addCheck', name: 'c', expression: 'n >= 0' },
        { id: 'b', kind: 'addCheck', table: 'public.orders', name: 'd', expression: 'n >= 0' },
        { id: 'c', kind: 'addCheck', table: 'sales.items', name: 'e', expression: 'n >= 0' },
      ],
    });
    expect(rolloutTables(r)).toEqual(['public.orders', 'sales.items']);
  });
});

describe('client errors carry their exit code', () => {
  test.each(errorExit)('%s exits %d', (_name, code, make) => expect(make().exitCode).toBe(code));
});
