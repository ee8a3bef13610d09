import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadTargetsFile, TargetsFileError } from '../../worker/fleet/targets-file';
import { poolShare } from '../../worker/fleet/workers';
import { loadWorkerConfig, ConfigError } from '../../worker/config';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-targets-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
};

test('a targets file: names sorted, tags as strings, a URL from the environment', () => {
  const f = file('ok.yaml', 'b: { url: "postgres://h/b", tags: { env: prod, shard: 3 } }\na: { urlEnv: A_URL }\n');
  expect(loadTargetsFile(f, { A_URL: 'postgres://h/a' })).toEqual([
    { name: 'a', url: 'postgres://h/a', tags: {} },
    { name: 'b', url: 'postgres://h/b', tags: { env: 'prod', shard: '3' } },
  ]);
});

test.each([
  ['bad-name.yaml', '"a b": { url: "postgres://h/x" }\n', /"a b" is not a target name/],
  ['both.yaml', 'a: { url: "postgres://h/x", urlEnv: X }\n', /a: give url or urlEnv \(exactly one\)/],
  ['unset.yaml', 'a: { urlEnv: NOT_SET_ANYWHERE }\n', /a\.urlEnv: NOT_SET_ANYWHERE is not set/],
  ['extra.yaml', 'a: { url: "postgres://h/x", password: p }\n', /a: Unrecognized key/],
  ['list.yaml', '- a\n- b\n', /expected a map of target name/],
])('%s is refused naming the target and field', (name, text, message) => {
  const f = file(name, text);
  expect(() => loadTargetsFile(f, {})).toThrow(TargetsFileError);
  expect(() => loadTargetsFile(f, {})).toThrow(message);
});

test('a missing file names the variable and the file', () => {
  expect(() => loadTargetsFile(path.join(dir, 'nope.yaml'))).toThrow(/STAGEFILL_TARGETS: cannot read .*nope\.yaml: ENOENT/);
});

describe('poolShare', () => {
  const cfg = (max: string) => loadWorkerConfig({ DATABASE_URL: 'postgres://h/db', STAGEFILL_FLEET_MAX_CONNECTIONS: max });
  test.each([
    ['100', 10, 10],
    ['100', 2, 20], // at most STAGEFILL_DB_POOL_SIZE
    ['100', 50, 2],
  ])('%s connections over %d targets: %d each', (max, targets, share) => expect(poolShare(cfg(max), targets)).toBe(share));
  test('under 2 per target is refused, saying what to raise or split', () => {
    expect(() => poolShare(cfg('100'), 51)).toThrow(ConfigError);
    expect(() => poolShare(cfg('100'), 51)).toThrow(/raise it to at least 102 or serve fewer targets per worker process/);
  });
});
