import { queriedTargets, pinWaves, TargetsQueryError } from '../../core/fleet/query';
import { planWaves, type WaveRule, type FleetTarget } from '../../core/fleet/waves';
import { fleetEtaSeconds, fleetEtaText, secondsPerTarget, type FleetEtaInput } from '../../core/fleet/eta';
import { parseFleetSpec } from '../../steps/fleet-spec';
import { SpecError } from '../../steps/spec';

const served: FleetTarget[] = [
  { name: 'catalog', tags: { role: 'catalog' } },
  { name: 'staging', tags: { env: 'staging' } },
  ...Array.from({ length: 6 }, (_, i) => ({ name: `t${i}`, tags: { env: 'prod' } })),
];
const rule = (name: string, select: WaveRule['select'], extra: Partial<WaveRule> = {}): WaveRule => ({
  name,
  select,
  parallelism: 1,
  onFailure: 'halt',
  approval: false,
  ...extra,
});

describe('queriedTargets', () => {
  test('the served targets the query named, once each, in name order', () => {
    expect(queriedTargets(served, ['t3', 'staging', 't1', 't3'], 'targets.yaml').map((t) => t.name)).toEqual(['staging', 't1', 't3']);
  });
  test.each([
    ['a name no target has', ['t1', 't9', 'gone'], 'returned 2 names no target of targets.yaml has: t9, gone'],
    ['a value that is not a name', ['t1', null, 'a b'], 'returned 2 values that are not a target name (null, "a b")'],
    ['no rows', [], 'returned no rows'],
  ])('refuses %s, naming it', (_what, names, message) => {
    expect(() => queriedTargets(served, names, 'targets.yaml')).toThrow(TargetsQueryError);
    expect(() => queriedTargets(served, names, 'targets.yaml')).toThrow(message);
  });
});

test('pinWaves: each wave names what its selector took among the queried targets, so planning over every served target takes the same', () => {
  const queried = queriedTargets(served, ['staging', 't0', 't1', 't2', 't4'], 'f');
  const waves = [
    rule('staging', { tags: { env: 'staging' } }),
    rule('canary', { names: ['t4'] }),
    rule('half', { share: 50 }),
    rule('rest', { share: 'rest' }),
  ];
  const pinned = pinWaves(queried, waves);
  expect(pinned.map((w) => w.select)).toEqual([{ names: ['staging'] }, { names: ['t4'] }, { names: ['t0', 't1'] }, { names: ['t2'] }]);
  // the workflow plans the pinned waves over everything the workers serve: t3, t5 and the catalog stay out
  expect(planWaves(served, pinned).waves.map((w) => w.targets)).toEqual([['staging'], ['t4'], ['t0', 't1'], ['t2']]);
  expect(pinned.map((w) => [w.parallelism, w.onFailure])).toEqual(waves.map((w) => [w.parallelism, w.onFailure]));
});

describe('parseFleetSpec targets', () => {
  const change = {
    kind: 'backfill',
    name: 'fill',
    table: 'public.acc',
    key: 'id',
    chunkSize: 100,
    transform: 'UPDATE public.acc SET n = v WHERE id >= :lo AND id < :hi',
  };
  const base = { kind: 'fleet', name: 'f', change, waves: [{ name: 'all', share: 'rest' }] };
  test('a query on a catalog target, its timeout in ms (30 s unless given)', () => {
    expect(parseFleetSpec({ ...base, targets: { query: 'SELECT name FROM tenants', catalog: 'catalog' } }).targets).toEqual({
      query: 'SELECT name FROM tenants',
      catalog: 'catalog',
      timeoutMs: 30_000,
    });
    expect(parseFleetSpec({ ...base, targets: { query: 'SELECT 1', catalogEnv: 'CATALOG_URL', timeout: '5s' } }).targets).toEqual({
      query: 'SELECT 1',
      catalogEnv: 'CATALOG_URL',
      timeoutMs: 5000,
    });
    expect(parseFleetSpec(base).targets).toBeUndefined();
  });
  test.each([
    ['no catalog', { query: 'SELECT 1' }, 'targets: give the catalog database one way'],
    ['both catalogs', { query: 'SELECT 1', catalog: 'c', catalogEnv: 'C' }, 'targets: give the catalog database one way'],
    ['an empty query', { query: '', catalog: 'c' }, 'targets.query: empty'],
    ['a bad env name', { query: 'SELECT 1', catalogEnv: 'not a var' }, 'targets.catalogEnv: the name of an environment variable'],
    ['a bad timeout', { query: 'SELECT 1', catalog: 'c', timeout: 'soon' }, 'targets.timeout: "soon" is not a duration'],
    ['a url in the spec', { query: 'SELECT 1', url: 'postgres://x' }, 'unknown field'],
  ])('refuses %s, naming the field', (_what, targets, message) => {
    expect(() => parseFleetSpec({ ...base, targets })).toThrow(SpecError);
    expect(() => parseFleetSpec({ ...base, targets })).toThrow(message);
  });
});

describe('fleetEtaSeconds', () => {
  const counts = (c: Partial<Record<'pending' | 'running' | 'waiting' | 'completed', number>>) => ({
    pending: 0,
    running: 0,
    waiting: 0,
    completed: 0,
    failed: 0,
    rolledBack: 0,
    skipped: 0,
    ...c,
  });
  const input = (over: Partial<FleetEtaInput> = {}): FleetEtaInput => ({
    state: 'running',
    currentWave: 'ten',
    waves: [
      { name: 'canary', state: 'completed', parallelism: 1, counts: counts({ completed: 1 }) },
      { name: 'ten', state: 'running', parallelism: 2, counts: counts({ running: 2, pending: 3, completed: 1 }) },
      { name: 'rest', state: 'pending', parallelism: 4, counts: counts({ pending: 9 }) },
    ],
    running: [
      { elapsedSeconds: 4, etaSeconds: 6 },
      { elapsedSeconds: 2, etaSeconds: null },
    ],
    completedSeconds: [10, 10],
    ...over,
  });
  test('running ones at their pace, then the pending ones a slot at a time, then each later wave', () => {
    // max(6, 10 - 2) + ceil(3 / 2) * 10 + ceil(9 / 4) * 10
    expect(fleetEtaSeconds(input())).toBe(8 + 20 + 30);
  });
  test("no target completed yet: one takes the running one's elapsed plus its ETA", () => {
    expect(secondsPerTarget([], input().running)).toBe(10);
    expect(fleetEtaSeconds(input({ completedSeconds: [], running: [{ elapsedSeconds: 1, etaSeconds: null }] }))).toBeNull();
  });
  test.each([
    ['completed', 0],
    ['rolled_back', 0],
    ['paused', null],
    ['waiting_approval', null],
    ['halted', null],
    ['rolling_back', null],
  ] as const)('%s: %s', (state, eta) => {
    expect(fleetEtaSeconds(input({ state }))).toBe(eta);
  });
  test('the text says what a standing fleet waits for', () => {
    expect(fleetEtaText('running', 125)).toBe('ETA 2m05s');
    expect(fleetEtaText('waiting_approval', null)).toBe('ETA waiting for approval');
    expect(fleetEtaText('running', null)).toBe('ETA --');
  });
});
