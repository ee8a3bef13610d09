import type { BudgetResults, SweepPoint, LoadStepResult } from '../../bench/budget-results';
import { frontier, fastestWithin, budgetWallMs } from '../../bench/budget-results';
import { windowsAfterStep, stepSvg } from '../../bench/load-step';
import { sweepSettings, pairedRecordOf } from '../../bench/budget';
import type { BenchOptions } from '../../bench/options';
import { parseBenchOptions } from '../../bench/options';
import type { BenchResults } from '../../bench/results';
import { verdicts } from '../../bench/results';
import { renderBudgetRounds } from '../../bench/report-budget';

const point = (id: string, wallMs: number, p99: number): SweepPoint => ({
  id,
  title: id,
  chunkSize: 1000,
  lanes: 1,
  fill: { wallMs, rows: 1000, chunks: 1, lanes: 1, chunkSqlMs: 0 },
  latency: { transactions: 100, failed: 0, p50: p99 / 2, p99, max: p99, tps: 200 },
});

const results: BudgetResults = {
  baselineP99: 2,
  sweep: [point('slow-calm', 30_000, 2.5), point('fast-noisy', 8000, 9), point('mid', 12_000, 3.5), point('mid-worse', 14_000, 6)],
  budgets: [],
};

test('the frontier: from the fastest, each setting with a lower load p99 than every faster one', () => {
  expect(frontier(results).map((p) => p.id)).toEqual(['fast-noisy', 'mid', 'slow-calm']);
});

test.each([
  [1.5, 'slow-calm'],
  [2, 'mid'],
  [5, 'fast-noisy'],
  [1.1, undefined],
])('the fastest fixed setting within %d× the no-backfill p99: %s', (ratio, id) => {
  expect(fastestWithin(results, ratio)?.id).toBe(id);
});

test('the sweep covers every chunk size × lanes × rate, rates as fractions of the fastest (0: none)', () => {
  const opts = { sweepChunks: [1000, 5000], sweepLanes: [1, 2], sweepRates: [0, 0.5] } as BenchOptions;
  const s = sweepSettings(opts, 100_000);
  expect(s).toHaveLength(8);
  expect(s).toContainEqual({ chunkSize: 5000, lanes: 2, rowsPerSecond: 50_000 });
  expect(s).toContainEqual({ chunkSize: 1000, lanes: 1, rowsPerSecond: undefined });
});

test('the load step: windows from 10 s after the step count, and the plot is well-formed SVG with every series', () => {
  const step: LoadStepResult = {
    ratio: 2,
    baseRate: 200,
    stepAtMs: 12_000,
    wallMs: 40_000,
    samples: Array.from({ length: 80 }, (_, i) => ({
      t: i * 500,
      rowsProcessed: i * 5000,
      allowedRowsPerSecond: 10_000,
      probeP99Ms: 1,
      budgetP99Ms: 2,
    })),
    windows: [0, 10_000, 20_000, 30_000].map((fromMs) => ({ fromMs, p99: 3, transactions: 2000 })),
    seconds: Array.from({ length: 40 }, (_, i) => ({ fromMs: i * 1000, p99: 3, transactions: 200 })),
  };
  expect(windowsAfterStep(step).map((w) => w.fromMs)).toEqual([30_000]);
  const svg = stepSvg(step, 2);
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg.match(/<path /g)).toHaveLength(4);
  expect(svg).toContain('budget 4.0 ms');
  expect(svg).toContain('load ×2');
});

test('verdicts: a budget no fixed setting kept is judged on whether stagefill kept it; history by the longest single run', () => {
  const fill = (wallMs: number, rows: number, longestRunEvents?: number) => ({
    wallMs,
    rows,
    chunks: 1,
    lanes: 1,
    chunkSqlMs: 0,
    stagefill: {
      workflowId: 'w',
      runs: 2,
      historyEvents: 9000,
      longestRunEvents,
      activeMs: 0,
      progressChunkSqlMs: 0,
      workerPeakRssMb: 100,
    },
  });
  const round = (p99: number) => ({ round: 1, fill: fill(20_000, 1000), latency: { ...point('x', 0, p99).latency } });
  const r = {
    alone: [{ id: 'stagefill', title: 'stagefill', runs: [fill(1000, 1000, 4000), fill(900, 1000, 8100)] }],
    load: [],
    trigger: [],
    scales: [{ scale: 10, rows: 1_000_000, singleMs: 1, stagefill: fill(1000, 1_000_000, 8200) }],
    workerPeakRssMb: NaN,
    budget: { ...results, budgets: [{ ratio: 1.1, title: 'b', rounds: [round(2.1)] }] },
  } as unknown as BenchResults;
  const v = verdicts(r);
  const none = v.find((x) => x.target.startsWith('budget 1.1×: wall'))!;
  expect(none).toMatchObject({ met: true, measured: '20.0 s, within the budget' });
  expect(none.target).toContain('none of the 4 fixed settings kept it');
  const history = v.find((x) => x.target.startsWith('history bounded'))!;
  expect(history).toMatchObject({ measured: '8200 events', met: true });
  expect(history.target).toContain('of 3 stagefill backfills up to 1,000,000 rows');
  const over = verdicts({ ...r, budget: { ...r.budget!, budgets: [{ ratio: 1.1, title: 'b', rounds: [round(2.5)] }] } });
  expect(over.find((x) => x.target.startsWith('budget 1.1×: wall'))).toMatchObject({ met: false, measured: '20.0 s, over the budget' });
});

test('--pg-set: repeatable name=value over the benchmark settings; --flush-after-kb: 256 unless given; bad values are refused naming the option', () => {
  const opts = parseBenchOptions(['--pg-set', 'backend_flush_after=256kB', '--pg-set', 'bgwriter_flush_after=0'], '/tmp');
  expect(opts.pgSettings).toEqual({ backend_flush_after: '256kB', bgwriter_flush_after: '0' });
  expect(parseBenchOptions([], '/tmp').pgSettings).toEqual({});
  // stagefill's own default write-back, or another for every stagefill run and bare chunks
  expect(parseBenchOptions([], '/tmp').flushAfterKb).toBe(256);
  expect(parseBenchOptions(['--flush-after-kb', '0'], '/tmp').flushAfterKb).toBe(0);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const exit = jest.spyOn(process, 'exit').mockImplementation(((code: number) => {
    throw new Error(`exit ${code}`);
  }) as never);
  try {
    expect(() => parseBenchOptions(['--pg-set', 'backend flush'], '/tmp')).toThrow('exit 2');
    expect(err.mock.calls.map((c) => String(c[0])).join('')).toContain('--pg-set takes name=value');
    expect(() => parseBenchOptions(['--flush-after-kb', '4096'], '/tmp')).toThrow('exit 2');
    expect(err.mock.calls.map((c) => String(c[0])).join('')).toContain('--flush-after-kb must be a whole number from 0 to 2048');
  } finally {
    err.mockRestore();
    exit.mockRestore();
  }
});

test('every budgeted round beside the load by itself before its first chunk, unfinished rounds included; none for older results', () => {
  const lat = (p99: number) => ({ ...point('x', 0, p99).latency });
  const fill = { wallMs: 50_000, rows: 1000, chunks: 1, lanes: 1, chunkSqlMs: 0 };
  const b: BudgetResults = {
    ...results,
    probeBaselineMs: 30_000,
    budgets: [
      {
        ratio: 2,
        title: 'b',
        rounds: [{ round: 2, fill, latency: lat(6), before: lat(12), otherCores: 0.25, stealCores: 0.1 }],
        unfinished: [{ round: 1, reason: 'did not finish within 210 s', latency: lat(3), before: lat(2) }],
      },
    ],
  };
  const md = renderBudgetRounds(b).join('\n');
  const lines = md.split('\n').filter((l) => l.startsWith('| 2×'));
  expect(lines).toEqual([
    '| 2× | 1 | unfinished | 2.0 | 3.0 | 1.50× | 1.50× |  |  |',
    '| 2× | 2 | 20.00 | 12.0 | 6.0 | 0.50× | 3.00× | 0.25 | 0.10 |',
  ]);
  expect(md).toContain('in the 30.00 s before the first chunk');
  // every row as wide as the header
  const widths = md
    .split('\n')
    .filter((l) => l.startsWith('|'))
    .map((l) => l.split('|').length);
  expect(new Set(widths).size).toBe(1);
  expect(md).toContain('| other load (cores) | host steal (cores) |');
  const older = { ...b, budgets: [{ ratio: 2, title: 'b', rounds: [{ round: 1, fill, latency: lat(6) }] }] };
  expect(renderBudgetRounds(older)).toEqual([]);
});

test("a budgeted round's wall: less the longer of the configured baseline and the one progress showed (it hears the probe late)", () => {
  const fill = { wallMs: 60_000, rows: 1, chunks: 1, lanes: 1, chunkSqlMs: 0 };
  expect(budgetWallMs({ probeBaselineMs: 30_000 }, { fill, baselineMs: 25_300 })).toBe(30_000);
  expect(budgetWallMs({ probeBaselineMs: 30_000 }, { fill, baselineMs: 31_100 })).toBe(28_900);
  // older results: the configured baseline alone
  expect(budgetWallMs({ probeBaselineMs: 30_000 }, { fill })).toBe(30_000);
});

test("a run's paired record: on-windows between the off-windows around it and the controller's, each against its neighbours, with the other load", () => {
  // the load alone at 2 ms, 3 ms while the backfill runs, 4 ms in a controller's off-window in the middle (the host drifted)
  const txns = Array.from({ length: 400 }, (_, i) => {
    const startMs = i * 100;
    const latencyMs = startMs < 10_000 || startMs >= 30_000 ? 2 : startMs >= 18_000 && startMs < 22_000 ? 4 : 3;
    return { startMs, endMs: startMs + latencyMs, latencyMs, failed: false };
  });
  const cpu = Array.from({ length: 41 }, (_, i) => ({ atMs: i * 1000, otherMs: i * 500 }));
  const p = pairedRecordOf(
    { txns, fromMs: 10_000, toMs: 28_000, offBefore: { fromMs: 0, toMs: 10_000 }, offAfter: { fromMs: 30_000, toMs: 40_000 } },
    [{ fromMs: 18_000, toMs: 22_000 }],
    cpu,
    0.25,
  );
  // 10-18 s: a 5-s window and the 3-s rest (long enough to stand alone); 22-28 s: one 6-s window (the 1-s rest joins it)
  expect(p.windows.map((w) => [w.fromMs, w.toMs, w.neighboursP99])).toEqual([
    [10_000, 15_000, 4],
    [15_000, 18_000, 4],
    [22_000, 28_000, 4],
  ]);
  expect(p.windows.map((w) => w.ratio)).toEqual([0.75, 0.75, 0.75]);
  expect(p.offWindows.map((w) => w.p99)).toEqual([2, 4, 2]);
  // half a core of other work in every window: each is noisy, and shown with it
  expect(p.windows.every((w) => w.isNoisy && Math.abs((w.otherCores ?? 0) - 0.5) < 1e-9)).toBe(true);
  expect(p.pooledRatio).toBe(0.75);
});

test('--noisy-cores: 0.25 unless given; out of range is refused naming the option', () => {
  expect(parseBenchOptions([], '/tmp').noisyCores).toBe(0.25);
  expect(parseBenchOptions(['--noisy-cores', '0.5'], '/tmp').noisyCores).toBe(0.5);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const exit = jest.spyOn(process, 'exit').mockImplementation(((code: number) => {
    throw new Error(`exit ${code}`);
  }) as never);
  try {
    expect(() => parseBenchOptions(['--noisy-cores', 'lots'], '/tmp')).toThrow('exit 2');
    expect(err.mock.calls.map((c) => String(c[0])).join('')).toContain('--noisy-cores must be a number from 0 to 64');
  } finally {
    err.mockRestore();
    exit.mockRestore();
  }
});
