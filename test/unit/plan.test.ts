import { parseDuration, formatDuration } from '../../core/common/duration';
import { windowState } from '../../core/common/window';
import { normalizeGraph, layers, rollbackOrder, readySteps } from '../../steps/graph';
import { evaluateExpect } from '../../core/common/expect';
import { planRollout, formatRolloutPlan } from '../../steps/describe';
import { parseRolloutSpec } from '../../steps/spec';

describe('durations', () => {
  test.each([
    ['30s', 30_000],
    ['15m', 900_000],
    ['4h', 14_400_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
    ['1500', 1500],
    [2000, 2000],
  ] as const)('%s is %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));
  test.each(['', '4 hours', 'h', '-1s', '1x'])('"%s" is not a duration', (text) => expect(parseDuration(text)).toBeUndefined());
  test('formats back', () => expect(formatDuration(4 * 3_600_000)).toBe('4h'));
});

describe('daily windows', () => {
  const at = (iso: string) => Date.parse(iso);
  test('inside the window: open, closing at its end', () => {
    expect(windowState({ start: '01:00', duration: 4 * 3_600_000 }, at('2026-03-10T02:30:00Z'))).toEqual({
      isOpen: true,
      closesAtMs: at('2026-03-10T05:00:00Z'),
    });
  });
  test('after the window: closed, opening tomorrow', () => {
    expect(windowState({ start: '01:00', duration: 3_600_000 }, at('2026-03-10T12:00:00Z'))).toEqual({
      isOpen: false,
      opensAtMs: at('2026-03-11T01:00:00Z'),
    });
  });
  test('a window that spans midnight is open just after midnight', () => {
    expect(windowState({ start: '23:00', duration: 2 * 3_600_000 }, at('2026-03-10T00:30:00Z'))).toEqual({
      isOpen: true,
      closesAtMs: at('2026-03-10T01:00:00Z'),
    });
  });
  test('time zones shift the window (Berlin is UTC+1 in winter)', () => {
    expect(windowState({ start: '01:00', duration: 3_600_000, timeZone: 'Europe/Berlin' }, at('2026-01-10T00:30:00Z'))).toEqual({
      isOpen: true,
      closesAtMs: at('2026-01-10T01:00:00Z'),
    });
  });
});

describe('step graph', () => {
  const diamond = normalizeGraph(
    [
      { id: 'orders', kind: 'addColumn' },
      { id: 'customers', kind: 'addColumn', dependsOn: [] },
      { id: 'derive', kind: 'backfill', dependsOn: ['orders', 'customers'] },
      { id: 'gate', kind: 'gate', dependsOn: ['derive'] },
    ],
    'public.t',
  );
  test('steps without dependsOn follow the one before', () => {
    const linear = normalizeGraph([{ kind: 'addColumn' }, { kind: 'gate' }], 'public.t');
    expect(linear.map((s) => [s.id, s.dependsOn])).toEqual([
      ['1-addColumn', []],
      ['2-gate', ['1-addColumn']],
    ]);
  });
  test('independent branches share a layer', () => {
    expect(layers(diamond).map((l) => l.map((s) => s.id))).toEqual([['orders', 'customers'], ['derive'], ['gate']]);
  });
  test('ready steps wait for all their dependencies', () => {
    expect(readySteps(diamond, new Set(['orders']), new Set(['customers'])).map((s) => s.id)).toEqual([]);
    expect(readySteps(diamond, new Set(['orders', 'customers']), new Set()).map((s) => s.id)).toEqual(['derive']);
  });
  test('rollback reverts dependents first, latest finished first', () => {
    expect(rollbackOrder(diamond, ['customers', 'orders', 'derive'])).toEqual(['derive', 'orders', 'customers']);
  });
});

describe('expectations', () => {
  test.each([
    [0, { eq: 0 }, 0, true],
    [1, { eq: 0 }, 0, false],
    [1, { eq: 0 }, 1, true],
    [0.02, { lte: 0.01 }, 0, false],
    [5, { between: [1, 10] as [number, number] }, 0, true],
    [10, { lt: 10 }, 0, false],
    [Number.NaN, { gte: 0 }, 0, false],
  ])('%p against %p (tolerance %p) -> %p', (value, expect_, tolerance, ok) => {
    expect(evaluateExpect(value, expect_, tolerance).ok).toBe(ok);
  });
});

describe('rollout plan text', () => {
  test('every step shows its lock and whether it is online', () => {
    const plan = planRollout(
      parseRolloutSpec({
        kind: 'rollout',
        name: 'r',
        table: 'orders',
        steps: [
          { kind: 'addColumn', column: 'c', type: 'int', up: '1' },
          { kind: 'sql', apply: 'create index i on orders (c)', revert: 'drop index i' },
        ],
      }),
    );
    expect(plan.steps.map((s) => [s.kind, s.lock, s.isOnline])).toEqual([
      ['addColumn', 'ACCESS EXCLUSIVE (catalog only, instant)', true],
      ['sql', 'whatever the statements take, held until they commit (under lock_timeout)', false],
    ]);
    const text = formatRolloutPlan(plan);
    expect(text).toContain('    lock:     ACCESS EXCLUSIVE (catalog only, instant); online (reads and writes go on)');
    expect(text).toContain(
      '    lock:     whatever the statements take, held until they commit (under lock_timeout); not online (may block writers while it runs)',
    );
  });
});
