import type { ChildBackfillReport, ReportMark, StepView } from '../../core/backfill/progress';
import {
  rolloutPercent,
  currentError,
  shouldReport,
  markReport,
  backfillFraction,
  REPORT_TUNING,
  shownRolloutState,
  shownStateReason,
} from '../../core/backfill/progress';
import type { HealthReading } from '../../core/backfill/state';
import { liveState, stateReason } from '../../core/backfill/state';
import type { ControlDecision } from '../../core/backfill/throttle-control';

const report = (workflowId: string, rowsDone: number, extra: Partial<ChildBackfillReport> = {}): ChildBackfillReport => ({
  workflowId,
  name: 'bf',
  state: 'running',
  stateReason: null,
  rowsDone,
  rowsTotal: 1000,
  rowsPerSecond: 100,
  etaSeconds: (1000 - rowsDone) / 100,
  at: 0,
  ...extra,
});
const reports = (...rs: ChildBackfillReport[]) => new Map(rs.map((r) => [r.workflowId, r]));
const step = (id: string, state: string, extra: Partial<StepView> = {}): StepView => ({ id, state, ...extra });

describe('a rollout counts every step the same, a backfilling step by the rows its backfill has done', () => {
  test.each<[string, string, StepView[], Map<string, ChildBackfillReport>, number, number | null]>([
    ['nothing started', 'running', [step('a', 'pending'), step('b', 'pending')], reports(), 0, null],
    [
      'the backfill of the first of four steps a quarter done',
      'running',
      [step('a', 'running', { backfillWorkflowId: 'c1' }), step('b', 'pending'), step('c', 'pending'), step('d', 'pending')],
      reports(report('c1', 250)),
      6.2, // (0.25 / 4) rounded down to one decimal
      7.5,
    ],
    [
      'the same step, later',
      'running',
      [step('a', 'running', { backfillWorkflowId: 'c1' }), step('b', 'pending'), step('c', 'pending'), step('d', 'pending')],
      reports(report('c1', 750)),
      18.7,
      2.5,
    ],
    [
      'a backfilling step with no report yet',
      'running',
      [step('a', 'running', { backfillWorkflowId: 'c1' }), step('b', 'pending')],
      reports(),
      0,
      null,
    ],
    [
      'a report of an earlier backfill of the step (a new one started) does not count',
      'running',
      [step('a', 'running', { backfillWorkflowId: 'c2' }), step('b', 'pending')],
      reports(report('c1', 900)),
      0,
      null,
    ],
    [
      'one step done, the second backfilling halfway',
      'running',
      [step('a', 'completed'), step('b', 'running', { backfillWorkflowId: 'c1' })],
      reports(report('c1', 500)),
      75,
      5,
    ],
    [
      'two backfills at once: the slower one is the ETA',
      'running',
      [step('a', 'running', { backfillWorkflowId: 'c1' }), step('b', 'running', { backfillWorkflowId: 'c2' })],
      reports(report('c1', 500), report('c2', 100, { etaSeconds: 90 })),
      30,
      90,
    ],
    [
      'a backfill with no rate yet gives no ETA',
      'running',
      [step('a', 'running', { backfillWorkflowId: 'c1' })],
      reports(report('c1', 0, { rowsPerSecond: 0, etaSeconds: null })),
      0,
      null,
    ],
    [
      'a finished step no longer reads its backfill',
      'running',
      [step('a', 'completed', { backfillWorkflowId: 'c1' }), step('b', 'pending')],
      reports(report('c1', 400)),
      50,
      null,
    ],
    ['skipped steps count as done', 'running', [step('a', 'skipped'), step('b', 'completed'), step('c', 'running')], reports(), 66.6, null],
    ['a completed rollout is 100%', 'completed', [step('a', 'completed'), step('b', 'skipped')], reports(), 100, 0],
    [
      'an empty table backfill is 0 until done',
      'running',
      [step('a', 'running', { backfillWorkflowId: 'c1' })],
      reports(report('c1', 0, { rowsTotal: 0 })),
      0,
      10,
    ],
  ])('%s', (_what, state, steps, rs, percent, eta) => {
    const got = rolloutPercent(state, steps, rs);
    expect(got.percent).toBe(percent);
    expect(got.etaSeconds).toBe(eta);
  });

  test('the running backfills are listed, finished ones not', () => {
    const got = rolloutPercent(
      'running',
      [step('a', 'completed', { backfillWorkflowId: 'c1' }), step('b', 'held', { backfillWorkflowId: 'c2' })],
      reports(report('c1', 1000), report('c2', 10)),
    );
    expect(got.backfills.map((r) => r.workflowId)).toEqual(['c2']);
  });

  test.each([
    [{ rowsDone: 5, rowsTotal: 10, state: 'running' }, 0.5],
    [{ rowsDone: 12, rowsTotal: 10, state: 'running' }, 1],
    [{ rowsDone: 0, rowsTotal: 0, state: 'completed' }, 1],
    [{ rowsDone: 0, rowsTotal: 0, state: 'running' }, 0],
  ])('backfillFraction(%p) is %p', (r, want) => expect(backfillFraction(r)).toBe(want));
});

describe('a rollout error shows while it applies, and becomes a recovered one once a retry got past it', () => {
  const gate = 'step "g": check "c" got 1, expected 0';
  test.each<[string, string, StepView[], string | null, { lastError: string | null; lastRecoveredError: string | null }]>([
    ['no error', 'running', [step('g', 'running')], null, { lastError: null, lastRecoveredError: null }],
    ['held on a gate', 'held', [step('g', 'held', { error: gate })], gate, { lastError: gate, lastRecoveredError: null }],
    [
      'held by a revert, its step not yet marked',
      'held',
      [step('t', 'reverting')],
      'step "t": revert held: rows',
      { lastError: 'step "t": revert held: rows', lastRecoveredError: null },
    ],
    ['retried, the gate passed, running', 'running', [step('g', 'completed')], gate, { lastError: null, lastRecoveredError: gate }],
    ['retried and completed', 'completed', [step('g', 'completed')], gate, { lastError: null, lastRecoveredError: gate }],
    ['failed on it', 'failed', [step('g', 'failed', { error: gate })], gate, { lastError: gate, lastRecoveredError: null }],
    [
      'refused (no step carries it)',
      'refused',
      [step('g', 'pending')],
      'table is busy',
      { lastError: 'table is busy', lastRecoveredError: null },
    ],
    [
      'rolled back on a step that failed and was reverted',
      'rolled_back',
      [step('a', 'reverted', { error: 'boom' })],
      'boom',
      { lastError: 'boom', lastRecoveredError: null },
    ],
    [
      'rolled back by an operator after a recovered gate',
      'rolled_back',
      [step('g', 'completed'), step('h', 'failed', { error: 'rollback requested by bob' })],
      gate,
      { lastError: null, lastRecoveredError: gate },
    ],
  ])('%s', (_what, state, steps, lastError, want) => expect(currentError(state, lastError, steps)).toEqual(want));
});

describe('a child backfill reports to its rollout at a bounded cadence', () => {
  const T = REPORT_TUNING;
  const mark = (at: number, percent: number, state = 'running', stateReports = 1): ReportMark => ({ at, percent, state, stateReports });
  test.each<[string, ReportMark | undefined, { at: number; percent: number; state: string }, 'state' | 'rows' | false]>([
    ['the first report goes at once', undefined, { at: 0, percent: 0, state: 'running' }, 'state'],
    ['a whole percent, too soon', mark(0, 1.5), { at: T.minIntervalMs - 1, percent: 9, state: 'running' }, false],
    ['a whole percent, late enough', mark(0, 1.5), { at: T.minIntervalMs, percent: 2.1, state: 'running' }, 'rows'],
    ['late enough, less than a whole percent', mark(0, 1.5), { at: 60_000, percent: 1.99, state: 'running' }, false],
    ['a state change goes at once', mark(0, 1.5), { at: 10, percent: 1.5, state: 'backing_off' }, 'state'],
    [
      'a state change past the budget waits for a row report',
      mark(0, 1.5, 'running', T.maxStateReports),
      { at: 10, percent: 1.5, state: 'backing_off' },
      false,
    ],
    ['...which carries it', mark(0, 1.5, 'running', T.maxStateReports), { at: T.minIntervalMs, percent: 2, state: 'backing_off' }, 'rows'],
  ])('%s', (_what, last, now, want) => expect(shouldReport(last, now)).toBe(want));

  test('a whole backfill, lease by lease for a long time, sends at most 100 row reports plus its state changes', () => {
    let last: ReportMark | undefined;
    let rows = 0;
    let state = 0;
    // a lease every second for ~3 hours, health flapping every lease
    for (let t = 0; t <= 10_000_000; t += 1000) {
      const now = { at: t, percent: (t / 10_000_000) * 100, state: (t / 1000) % 2 ? 'backing_off' : 'running' };
      const kind = shouldReport(last, now);
      if (!kind) continue;
      if (kind === 'rows') rows++;
      else state++;
      last = markReport(last, now, kind);
    }
    expect(state).toBe(T.maxStateReports);
    expect(rows).toBeLessThanOrEqual(100);
    expect(rows).toBeGreaterThan(90);
  });
});

describe("a backfill's state inside a round, and why", () => {
  const health = (value: number, max = 5): HealthReading => ({ value, max, isOver: value > max, backoffMs: 2000, at: 0 });
  const control = (hold: boolean): ControlDecision => ({
    lanes: 1,
    chunkSize: 100,
    hold,
    action: hold ? 'holding' : 'steady',
    holdCause: hold ? 'replica_lag' : undefined,
    reason: hold ? 'replica lag 2300 ms over the limit of 1500 ms' : 'p99 within budget',
    at: 0,
  });
  test.each<[string, HealthReading | undefined, ControlDecision | undefined, boolean, string]>([
    ['no health check, no controller', undefined, undefined, false, 'running'],
    ['health under its max', health(3), undefined, false, 'running'],
    ['health over its max', health(30), undefined, false, 'backing_off'],
    ['held by the controller', undefined, control(true), true, 'holding'],
    ['a hold from before the budget was taken off', undefined, control(true), false, 'running'],
    ['the controller lets it go', health(1), control(false), true, 'running'],
    ['health first: a lease over it waits before asking the controller', health(30), control(true), true, 'backing_off'],
  ])('%s', (_what, h, c, isControlled, want) => expect(liveState(h, c, isControlled)).toBe(want));

  test.each<[string, Parameters<typeof stateReason>[1], string | null]>([
    ['running', {}, null],
    ['backing_off', { health: health(30) }, 'health check returned 30, over its max of 5: backing off 2 s at a time'],
    ['holding', { control: control(true) }, 'held by replica lag: replica lag 2300 ms over the limit of 1500 ms'],
    ['waiting_window', { windowOpensAt: '2026-01-02T01:00:00.000Z' }, 'outside its window; it opens at 2026-01-02T01:00:00.000Z'],
    ['paused', {}, 'paused by an operator; `stagefill resume` goes on'],
    ['completed', { health: health(30) }, null],
  ])('%s: %p', (state, ctx, want) => expect(stateReason(state, ctx)).toBe(want));
});

describe('what an operator sees a rollout doing', () => {
  test.each([
    ['running', false, [], 'running'],
    ['waiting_approval', true, [], 'paused'],
    ['running', true, ['running'], 'paused'],
    ['held', true, [], 'paused'],
    ['rolling_back', true, [], 'rolling_back'],
    ['completed', true, [], 'completed'],
    ['running', false, ['backing_off'], 'backing_off'],
    ['running', false, ['running', 'holding'], 'holding'],
    ['waiting_approval', false, ['backing_off'], 'waiting_approval'],
  ])('%s, paused %s, backfills %j: %s', (state, isPaused, backfills, shown) => {
    expect(
      shownRolloutState(
        state,
        isPaused,
        backfills.map((s) => ({ state: s })),
      ),
    ).toBe(shown);
  });

  test('its reason names what it was doing, the backfill and its cause, or the end of the rollback window', () => {
    expect(shownStateReason('paused', 'waiting_approval', [])).toBe('paused while waiting_approval: `resume` goes on');
    expect(
      shownStateReason('backing_off', 'running', [{ name: 'bf', state: 'backing_off', stateReason: 'health check returned 30' }]),
    ).toBe('backfill bf backing_off: health check returned 30');
    expect(shownStateReason('waiting_window', 'waiting_window', [], { step: 'c', endsAt: '2026-01-01T00:00:00.000Z' })).toMatch(
      /step "c" waits for the rollback window until 2026-01-01T00:00:00.000Z/,
    );
    expect(shownStateReason('running', 'running', [])).toBeNull();
  });
});
