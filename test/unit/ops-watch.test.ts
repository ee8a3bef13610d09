import { RateTracker, formatProgressLine, formatEta } from '../../client/watch';

const backfill = (rowsProcessed: number, extra: Record<string, unknown> = {}) => ({
  kind: 'backfill',
  state: 'running',
  rowsProcessed,
  rowsTotal: 10_000,
  chunksDone: rowsProcessed / 100,
  chunksTotal: 100,
  rowsPerSecond: 0,
  etaSeconds: null,
  ...extra,
});

test.each([
  [null, '--'],
  [42, '42s'],
  [61, '1m01s'],
  [3600 * 2 + 60 * 5, '2h05m'],
])('formatEta(%p) is %p', (s, want) => expect(formatEta(s)).toBe(want));

test('the watcher measures rate and ETA from the rows it sees move', () => {
  const t = new RateTracker();
  expect(t.observe(backfill(0), 0)).toBeUndefined(); // one sample is no rate
  expect(t.observe(backfill(1000), 1000)).toEqual({ rowsPerSecond: 1000, etaSeconds: 9 });
  expect(t.observe(backfill(3000), 2000)).toEqual({ rowsPerSecond: 1500, etaSeconds: 5 });
});

test('only the last ten seconds count, and a restart from zero starts the measurement over', () => {
  const t = new RateTracker();
  for (let s = 0; s <= 20; s++) t.observe(backfill(s < 10 ? s * 100 : 1000 + (s - 10) * 400), s * 1000);
  expect(t.observe(backfill(5400), 21_000)!.rowsPerSecond).toBe(400);
  expect(t.observe(backfill(0), 22_000)).toBeUndefined(); // a new backfill step counts from its own zero
});

test("the run's own rate wins when it has one; otherwise the observed one is shown", () => {
  expect(formatProgressLine(backfill(5000, { rowsPerSecond: 800, etaSeconds: 7 }), { rowsPerSecond: 10, etaSeconds: 500 })).toMatch(/800 rows\/s ETA 7s$/);
  expect(formatProgressLine(backfill(5000), { rowsPerSecond: 1250, etaSeconds: 4 })).toMatch(/ 50\.0% running\s+rows 5,000\/10,000 chunks 50\/100 1,250 rows\/s ETA 4s$/);
  expect(formatProgressLine(backfill(5000))).toMatch(/0 rows\/s ETA --$/);
});

test('a rollout line names its step and the backfill inside it', () => {
  const line = formatProgressLine(
    { kind: 'rollout', state: 'running', currentStep: '1-addColumn', steps: [{ state: 'running' }, { state: 'pending' }], backfill: backfill(2000) },
    { rowsPerSecond: 500, etaSeconds: 16 },
  );
  expect(line).toBe('  0.0% running        step 1-addColumn [backfill 2,000/10,000 rows, 500 rows/s, ETA 16s]');
});
