import { faultSchedule, plannedRun, clockSkewMs, FAULT_KINDS, RUN_CLASSES } from '../../chaos/schedule';
import { derive, seeded, shuffle } from '../../chaos/rng';

const OPTS = { gapMs: [3000, 12000] as [number, number], downMs: [1000, 8000] as [number, number] };

describe('the chaos campaign replays by seed', () => {
  test('the fault schedule is a pure function of the seed: same seed, same faults, kinds, offsets, durations and workers', () => {
    const a = faultSchedule(2027, 10, 3, OPTS);
    // drawing other seeds' schedules and run mixes in between changes nothing (no shared generator state)
    faultSchedule(1, 10, 3, OPTS);
    plannedRun(2027, 'backfill', 0);
    const b = faultSchedule(2027, 10, 3, OPTS);
    expect(b).toEqual(a);
    expect(a.length).toBeGreaterThan(40);
    // every kind once among the first, in the seed's order
    expect(new Set(a.slice(0, FAULT_KINDS.length).map((f) => f.kind))).toEqual(new Set(FAULT_KINDS));
    // offsets grow, within the campaign, each a gap after the planned end of the one before
    for (let i = 1; i < a.length; i++) {
      const gap = (a[i]!.at - a[i - 1]!.at) * 1000 - a[i - 1]!.downMs;
      expect(gap).toBeGreaterThanOrEqual(OPTS.gapMs[0] - 1e-6);
      expect(gap).toBeLessThanOrEqual(OPTS.gapMs[1] + 1e-6);
    }
    expect(a[a.length - 1]!.at).toBeLessThan(600);
    expect(a.every((f) => f.worker >= 0 && f.worker < 3)).toBe(true);
  });

  test('another seed gives another schedule; a longer campaign the same schedule, continued', () => {
    const a = faultSchedule(2027, 10, 3, OPTS);
    expect(faultSchedule(2028, 10, 3, OPTS)).not.toEqual(a);
    const longer = faultSchedule(2027, 30, 3, OPTS);
    expect(longer.slice(0, a.length)).toEqual(a);
    expect(longer.length).toBeGreaterThan(a.length * 2);
  });

  test("the campaign's run mix is a pure function of the seed: the n-th run of each class, whatever ran before it", () => {
    const mix = (seed: number) => RUN_CLASSES.map((c) => Array.from({ length: 12 }, (_, n) => plannedRun(seed, c, n)));
    const a = mix(2027);
    expect(mix(2027)).toEqual(a);
    expect(mix(2026)).not.toEqual(a);
    // asked for in another order (as timing would start them), each run is still the same
    for (let n = 11; n >= 0; n--) expect(plannedRun(2027, 'rollout', n)).toEqual(a[1]![n]);
    const backfills = a[0];
    expect(new Set(backfills!.map((r) => r.kind))).toEqual(new Set(['backfill-int', 'backfill-uuid', 'backfill-composite']));
    expect(backfills!.every((r) => r.decision === undefined)).toBe(true);
    // approvals in pairs, one each way: even two rollouts (or graphs, or fleets) go both ways
    for (const runs of a.slice(1))
      for (let n = 0; n < runs.length; n += 2) expect([runs[n]!.decision, runs[n + 1]!.decision].sort()).toEqual(['approve', 'rollback']);
    expect(a.slice(1).map((runs) => runs.map((r) => r.kind))).toEqual(RUN_CLASSES.slice(1).map((c) => Array(12).fill(c)));
  });

  test('the skewed worker: 30 s to 5 min, ahead or behind, by the seed', () => {
    expect(clockSkewMs(2027)).toBe(clockSkewMs(2027));
    const skews = Array.from({ length: 40 }, (_, s) => clockSkewMs(s));
    expect(skews.every((ms) => Math.abs(ms) >= 30_000 && Math.abs(ms) <= 300_000)).toBe(true);
    expect(skews.some((ms) => ms > 0) && skews.some((ms) => ms < 0)).toBe(true);
  });

  test('derive and shuffle: each part moves the seed; a shuffle keeps every item', () => {
    expect(derive(1, 3, 0, 5)).not.toBe(derive(1, 3, 0, 6));
    expect(derive(1, 3, 0)).not.toBe(derive(1, 3, 0, 0));
    expect(shuffle([1, 2, 3, 4, 5, 6], seeded(9)).sort()).toEqual([1, 2, 3, 4, 5, 6]);
  });
});
