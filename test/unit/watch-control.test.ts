import { formatControl } from '../../client/watch';

test("the controller's clause shows the budget's baseline, its age and the off-windows taken, the traffic's p99 and a raise", () => {
  const c = {
    hold: false,
    action: 'steady',
    reason: 'x',
    lanes: 2,
    chunkSize: 1000,
    rowsPerSecond: 5000,
    p99Ms: 3,
    p50Ms: 1,
    budgetP99Ms: 6.5,
  };
  expect(formatControl({ ...c, baselineP99Ms: 1.6, baselineAt: 10_000, at: 45_000, baselineWindows: 1 })).toBe(
    'p99 3.00/6.50 ms budget (p50 1.00), baseline 1.60 ms, 35 s old, 1 off-window, 5,000 rows/s allowed on 2 lanes of 1,000-row chunks: steady',
  );
  expect(
    formatControl({ ...c, baselineP99Ms: 1.6, trafficP99Ms: 4.9, baselineAt: 10_000, at: 10_000, baselineWindows: 4, askedP99Ms: 2.4 }),
  ).toMatch(/baseline 1\.60 ms \(traffic 4\.90 ms\), 0 s old, 4 off-windows, budget raised from 2\.40 ms,/);
  // an absolute budget: no baseline to show
  expect(formatControl(c)).not.toMatch(/baseline/);
});
