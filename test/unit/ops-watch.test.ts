import { RateTracker, formatProgressLine, formatEta, formatStatus } from '../../client/watch';

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
  expect(formatProgressLine(backfill(5000, { rowsPerSecond: 800, etaSeconds: 7 }), { rowsPerSecond: 10, etaSeconds: 500 })).toMatch(
    /800 rows\/s ETA 7s$/,
  );
  expect(formatProgressLine(backfill(5000), { rowsPerSecond: 1250, etaSeconds: 4 })).toMatch(
    / 50\.0% running\s+rows 5,000\/10,000 chunks 50\/100 1,250 rows\/s ETA 4s$/,
  );
  expect(formatProgressLine(backfill(5000))).toMatch(/0 rows\/s ETA --$/);
});

test('a rollout line names its step and the backfill inside it', () => {
  const line = formatProgressLine(
    {
      kind: 'rollout',
      state: 'running',
      currentStep: '1-addColumn',
      steps: [{ state: 'running' }, { state: 'pending' }],
      backfill: backfill(2000),
    },
    { rowsPerSecond: 500, etaSeconds: 16 },
  );
  expect(line).toBe('  0.0% running        step 1-addColumn [backfill 2,000/10,000 rows, 500 rows/s, ETA 16s]');
});

test('a controlled backfill shows its budget, the measured latency, the allowed rate and what the controller does, or why it holds', () => {
  const control = {
    hold: false,
    action: 'increasing',
    reason: 'p99 1.20 ms under the 5.00 ms budget: rate to 3000 rows/s',
    rowsPerSecond: 3000,
    lanes: 2,
    chunkSize: 1000,
    budgetP99Ms: 5,
    p50Ms: 0.4,
    p99Ms: 1.2,
  };
  expect(formatProgressLine(backfill(5000, { rowsPerSecond: 800, etaSeconds: 7, control }))).toMatch(
    /800 rows\/s ETA 7s \| p99 1\.20\/5\.00 ms budget \(p50 0\.40\), 3,000 rows\/s allowed on 2 lanes of 1,000-row chunks: increasing$/,
  );
  const held = {
    ...control,
    hold: true,
    action: 'holding',
    reason: 'replica lag 2300 ms over the limit of 1500 ms',
    budgetP99Ms: undefined,
    p99Ms: undefined,
    maxReplicaLagMs: 1500,
    replicas: [{ name: 'r1@10.0.0.2', lagMs: 2300, state: 'streaming' }],
  };
  expect(formatProgressLine(backfill(5000, { control: held }))).toMatch(
    /\| r1@10\.0\.0\.2 lag 2,300 ms \(max 1,500 ms\): HELD: replica lag 2300 ms over the limit of 1500 ms$/,
  );
  expect(formatStatus({ ...backfill(5000, { control: held }), workflowStatus: 'RUNNING' })).toContain(
    'throttle: holding (held): replica lag 2300 ms over the limit of 1500 ms',
  );
});

test("a rollout's percentage includes its running backfill: the report it has, or the fresher progress the watcher queried", () => {
  const steps = [
    { id: 'add', state: 'running', backfillWorkflowId: 'c1' },
    { id: 'gate', state: 'pending' },
  ];
  const reported = {
    kind: 'rollout',
    state: 'running',
    currentStep: 'add',
    steps,
    percent: 10,
    etaSeconds: 40,
    backfills: [
      {
        workflowId: 'c1',
        name: 'bf',
        state: 'running',
        stateReason: null,
        rowsDone: 2000,
        rowsTotal: 10_000,
        rowsPerSecond: 200,
        etaSeconds: 40,
        at: 0,
      },
    ],
    lastError: null,
    lastRecoveredError: null,
  };
  // `status`: the rollout's own figures, the backfill from its last report
  expect(formatProgressLine(reported)).toBe(' 10.0% running        step add [backfill 2,000/10,000 rows, 200 rows/s, ETA 40s]');
  expect(formatStatus({ ...reported, workflowStatus: 'RUNNING' })).toContain('progress: 10.0%, ETA 40s');
  // `watch`: the backfill it queried itself is further along than the report
  expect(formatProgressLine({ ...reported, backfill: backfill(6000, { rowsPerSecond: 250, etaSeconds: 16 }) })).toBe(
    ' 30.0% running        step add [backfill 6,000/10,000 rows, 250 rows/s, ETA 16s]',
  );
});

test('a state that is not plain running says why: backing off on the health check, in a backfill and inside a rollout', () => {
  const why = 'health check returned 30, over its max of 5: backing off 2 s at a time';
  expect(formatProgressLine(backfill(0, { state: 'backing_off', stateReason: why }))).toMatch(
    /^  0\.0% backing_off\s+rows 0\/10,000 .* \| health check returned 30, over its max of 5: backing off 2 s at a time$/,
  );
  expect(formatStatus({ ...backfill(0, { state: 'backing_off', stateReason: why }), workflowStatus: 'RUNNING' })).toContain(
    `state: backing_off (${why})`,
  );
  const line = formatProgressLine({
    kind: 'rollout',
    state: 'running',
    currentStep: 'add',
    steps: [{ id: 'add', state: 'running', backfillWorkflowId: 'c1' }],
    percent: 0,
    backfill: backfill(0, { state: 'backing_off', stateReason: why }),
  });
  expect(line).toContain(`[backfill backing_off (${why}) 0/10,000 rows`);
});

test('a rollout that got past a held gate with `retry` shows the old error as recovered, not as its error', () => {
  const text = formatStatus({
    kind: 'rollout',
    state: 'completed',
    steps: [{ id: 'g', kind: 'gate', state: 'completed' }],
    percent: 100,
    etaSeconds: 0,
    backfills: [],
    lastError: null,
    lastRecoveredError: 'step "g": check "c" got 1, expected 0',
    workflowStatus: 'COMPLETED',
  });
  expect(text).not.toContain('error:');
  expect(text).toContain('recovered from: step "g": check "c" got 1, expected 0');
  expect(text.split('\n')[0]).toMatch(/^100\.0% completed\s*$/);
});
