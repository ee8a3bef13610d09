import fs from 'node:fs';
import path from 'node:path';
import { loadFleetSpecFile } from '../../client/fleet/spec-load';
import type { WaveRule } from '../../core/fleet/waves';
import { planWaves, allowedFailures, parseShare, WavePlanError } from '../../core/fleet/waves';
import { shapeDifferences } from '../../core/fleet/shape';
import { parseFleetSpec } from '../../steps/fleet-spec';
import { SpecError } from '../../steps/spec';
import { fleetScheduleRefusal } from '../../client/schedules';

const targets = [
  { name: 'staging', tags: { env: 'staging' } },
  ...Array.from({ length: 9 }, (_, i) => ({ name: `t${i}`, tags: { env: 'prod', tier: i < 2 ? 'enterprise' : 'free' } })),
];
const rule = (name: string, select: WaveRule['select'], extra: Partial<WaveRule> = {}): WaveRule => ({
  name,
  select,
  parallelism: 1,
  onFailure: 'halt',
  approval: false,
  ...extra,
});

describe('planWaves', () => {
  test.each([
    [
      'staging by tag, a named canary, a share, the rest',
      [
        rule('staging', { tags: { env: 'staging' } }),
        rule('canary', { names: ['t5'] }),
        rule('ten', { share: 10 }),
        rule('rest', { share: 'rest' }),
      ],
      [['staging'], ['t5'], ['t0'], ['t1', 't2', 't3', 't4', 't6', 't7', 't8']],
      [],
    ],
    [
      'a tag wave takes only what no earlier wave took',
      [rule('a', { names: ['t0'] }), rule('b', { tags: { tier: 'enterprise' } })],
      [['t0'], ['t1']],
      ['staging', 't2', 't3', 't4', 't5', 't6', 't7', 't8'],
    ],
    ['a share rounds up, at least one', [rule('a', { share: 1 })], [['staging']], ['t0', 't1', 't2', 't3', 't4', 't5', 't6', 't7', 't8']],
    [
      '50% of 10 is 5',
      [rule('a', { share: 50 }), rule('b', { share: 'rest' })],
      [
        ['staging', 't0', 't1', 't2', 't3'],
        ['t4', 't5', 't6', 't7', 't8'],
      ],
      [],
    ],
    ['a wave with nothing left is empty', [rule('a', { share: 'rest' }), rule('b', { share: 10 })], [targets.map((t) => t.name), []], []],
  ])('%s', (_what, waves, expected, unassigned) => {
    const planned = planWaves(targets, waves);
    expect(planned.waves.map((w) => w.targets)).toEqual(expected);
    expect(planned.unassigned).toEqual(unassigned);
  });

  test.each([
    ['an unknown name', [rule('canary', { names: ['nope'] })], /wave "canary": no target named "nope"/],
    [
      'a name taken twice',
      [rule('a', { names: ['t1'] }), rule('b', { names: ['t1'] })],
      /wave "b": target "t1" is already in an earlier wave/,
    ],
  ])('refuses %s', (_what, waves, message) => {
    expect(() => planWaves(targets, waves)).toThrow(WavePlanError);
    expect(() => planWaves(targets, waves)).toThrow(message);
  });
});

test.each([
  [{ onFailure: 'halt' as const }, 10, 0],
  [{ onFailure: 'continue' as const }, 10, Infinity],
  [{ onFailure: 'continue' as const, maxFailures: 3 }, 10, 3],
  [{ onFailure: 'continue' as const, maxFailures: { percent: 25 } }, 10, 2],
  // a share: rounded down, at least one when above 0 (10% of 5 is 1, not 0: `continue` does not act as `halt`)
  [{ onFailure: 'continue' as const, maxFailures: { percent: 10 } }, 5, 1],
  [{ onFailure: 'continue' as const, maxFailures: { percent: 10 } }, 25, 2],
  [{ onFailure: 'continue' as const, maxFailures: { percent: 10 } }, 89, 8],
  [{ onFailure: 'continue' as const, maxFailures: { percent: 10 } }, 90, 9],
  [{ onFailure: 'continue' as const, maxFailures: { percent: 0 } }, 5, 0],
  [{ onFailure: 'continue' as const, maxFailures: { percent: 10 } }, 0, 0],
])('allowedFailures(%j, %d) = %d', (r, size, expected) => expect(allowedFailures(r, size)).toBe(expected));

test('fleets started before the at-least-one rule keep plain rounding down (their histories replay as they ran)', () => {
  expect(allowedFailures({ onFailure: 'continue', maxFailures: { percent: 10 } }, 5, { atLeastOne: false })).toBe(0);
  expect(allowedFailures({ onFailure: 'continue', maxFailures: { percent: 10 } }, 25, { atLeastOne: false })).toBe(2);
});

test.each([
  ['10%', 10],
  ['rest', 'rest'],
  ['0%', undefined],
  ['150%', undefined],
  ['ten', undefined],
])('parseShare(%s)', (v, expected) => expect(parseShare(v)).toBe(expected));

describe('shapeDifferences', () => {
  const ok = ['id bigint not null', 'n integer not null', 'v integer'];
  test('names the target that differs, with the difference, against the shape most share', () => {
    const d = shapeDifferences('public.acc', [
      { target: 'a', shape: ok },
      { target: 'b', shape: ['id bigint not null', 'n bigint not null', 'v integer', 'x text'] },
      { target: 'c', shape: ok },
      { target: 'd', shape: null },
      { target: 'e', shape: ['id bigint not null', 'n integer not null'] },
    ]);
    expect(d).toEqual([
      { target: 'b', table: 'public.acc', differences: ['column n bigint not null (expected n integer not null)', 'extra column x text'] },
      { target: 'd', table: 'public.acc', differences: ['public.acc does not exist (the other targets have it)'] },
      { target: 'e', table: 'public.acc', differences: ['column v is missing (expected v integer)'] },
    ]);
  });
  test('the same shape everywhere: nothing', () => {
    expect(
      shapeDifferences('public.acc', [
        { target: 'a', shape: ok },
        { target: 'b', shape: ok },
      ]),
    ).toEqual([]);
  });
});

/** A backfill change the fleet specs below wrap. */
const BACKFILL_CHANGE = {
  kind: 'backfill',
  name: 'fill',
  table: 'public.acc',
  key: 'id',
  chunkSize: 100,
  transform: 'UPDATE public.acc SET n = v WHERE id >= :lo AND id < :hi',
};

describe('parseFleetSpec', () => {
  const change = BACKFILL_CHANGE;
  const base = { kind: 'fleet', name: 'f', change, waves: [{ name: 'all', share: 'rest' }] };
  test('a valid spec: defaults, the change parsed, waves as rules', () => {
    const s = parseFleetSpec({
      ...base,
      waves: [
        { name: 'c', names: ['t1'] },
        { name: 'r', share: 'rest', onFailure: 'continue', maxFailures: '10%', parallelism: 4, approval: true },
      ],
    });
    expect(s.change.kind).toBe('backfill');
    expect(s.onShapeMismatch).toBe('refuse');
    expect(s.notify).toBeUndefined();
    expect(s.waves).toEqual([
      { name: 'c', select: { names: ['t1'] }, parallelism: 1, onFailure: 'halt', maxFailures: undefined, approval: false },
      { name: 'r', select: { share: 'rest' }, parallelism: 4, onFailure: 'continue', maxFailures: { percent: 10 }, approval: true },
    ]);
  });
  test("soak: a wave's checks, their duration and interval in ms (every defaults to 30s)", () => {
    const checks = [{ name: 'no errors', sql: 'SELECT count(*) FROM public.errors', expect: { eq: 0 } }];
    const s = parseFleetSpec({ ...base, waves: [{ name: 'c', names: ['t1'], soak: { duration: '10m', checks } }] });
    expect(s.waves[0]?.soak).toEqual({ durationMs: 600_000, everyMs: 30_000, checks: [{ ...checks[0], tolerance: 0 }] });
    expect(parseFleetSpec(base).waves[0]).not.toHaveProperty('soak');
  });
  test('notify: the fleet webhook and its events, wave events included', () => {
    const notify = { webhook: 'https://hooks.example/fleet', on: ['wave_halted', 'rolled_back'] };
    expect(parseFleetSpec({ ...base, notify }).notify).toEqual(notify);
  });
  test.each([
    ['two selectors', { waves: [{ name: 'a', names: ['t1'], share: 'rest' }] }, 'waves.0.share: a wave picks its targets one way'],
    [
      'no selector',
      { waves: [{ name: 'a' }] },
      'waves.0: a wave picks its targets one way: give exactly one of names, tags or share (it has none)',
    ],
    ['a bad share', { waves: [{ name: 'a', share: 'half' }] }, 'waves.0.share: "half" is not a share'],
    [
      'maxFailures with halt',
      { waves: [{ name: 'a', share: 'rest', maxFailures: 2 }] },
      'waves.0.maxFailures: maxFailures applies with onFailure: continue',
    ],
    [
      'a wave named twice',
      {
        waves: [
          { name: 'a', share: '10%' },
          { name: 'a', share: 'rest' },
        ],
      },
      'waves.1.name: wave "a" is named twice',
    ],
    [
      'a soak check that compares with a baseline',
      { waves: [{ name: 'a', share: 'rest', soak: { duration: '1m', checks: [{ name: 'n', sql: 'SELECT 1', unchanged: true }] } }] },
      "waves.0.soak.checks.0.unchanged: a wave's soak check needs expect: a bound",
    ],
    [
      'a soak without checks',
      { waves: [{ name: 'a', share: 'rest', soak: { duration: '1m', checks: [] } }] },
      'waves.0.soak.checks: a soak needs at least one check',
    ],
    [
      'a soak without a duration',
      { waves: [{ name: 'a', share: 'rest', soak: { checks: [{ name: 'n', sql: 'SELECT 1', expect: { eq: 1 } }] } }] },
      'waves.0.soak.duration',
    ],
    ['a bad change', { change: { ...change, transform: undefined } }, 'change.transform'],
    ['a fleet of fleets', { change: { kind: 'fleet' } }, 'change.kind: a fleet changes each target with a rollout or a backfill'],
    ['an unknown field', { wave: [] }, 'unknown field "wave"'],
    [
      'a notify webhook that is no URL',
      { notify: { webhook: 'slack' } },
      'notify.webhook: notify.webhook must be an http:// or https:// URL',
    ],
    [
      'a notify event unknown',
      { notify: { webhook: 'https://h.example/x', on: ['wave_ended'] } },
      'notify.on.0: notify.on lists events out of',
    ],
  ])('refuses %s, naming the field', (_what, patch, message) => {
    let err: unknown;
    try {
      parseFleetSpec({ ...base, ...patch });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).message).toContain(message);
  });
});

test('examples/fleet-*.yaml parse as fleets, each wave as its comment says', () => {
  const dir = path.join(__dirname, '..', '..', 'examples');
  const files = fs.readdirSync(dir).filter((f) => f.startsWith('fleet-') && f.endsWith('.yaml'));
  expect(files.length).toBeGreaterThan(0);
  for (const f of files) expect(loadFleetSpecFile(path.join(dir, f))?.kind).toBe('fleet');
  const s = loadFleetSpecFile(path.join(dir, 'fleet-orders-cents.yaml'))!;
  expect(s.waves.map((w) => w.select)).toEqual([{ tags: { env: 'staging' } }, { names: ['tenant_2'] }, { share: 25 }, { share: 'rest' }]);
  expect(s.change.kind).toBe('rollout');
});

describe('fleetScheduleRefusal', () => {
  const backfill = BACKFILL_CHANGE;
  const waves = [{ name: 'all', share: 'rest' }];
  test.each([
    ['a fleet of a backfill', { change: backfill }, undefined],
    [
      'a fleet of a rollout',
      { change: { kind: 'rollout', name: 'r', table: 'public.acc', steps: [{ kind: 'setNotNull', column: 'v' }] } },
      'change.kind: schedules run backfills',
    ],
    [
      'targets from a catalog query',
      { change: backfill, targets: { query: 'SELECT name FROM t', catalog: 'c' } },
      'targets.query: a schedule',
    ],
  ])('%s', (_what, patch, message) => {
    const refusal = fleetScheduleRefusal(parseFleetSpec({ kind: 'fleet', name: 'f', waves, ...patch }));
    if (message === undefined) expect(refusal).toBeUndefined();
    else expect(refusal).toContain(message);
  });
});
