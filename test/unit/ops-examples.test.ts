import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { Spec } from '../../steps/spec';
import { parseSpec } from '../../steps/spec';

const dir = path.join(__dirname, '..', '..', 'examples');
// fleet-*.yaml wrap a spec of these (test/unit/fleet.test.ts reads them)
const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && !f.startsWith('fleet-'));
const parsed = new Map<string, Spec>(files.map((f) => [f, parseSpec(YAML.parse(fs.readFileSync(path.join(dir, f), 'utf8')), f)]));

test('examples/ has spec files for the common cases', () => {
  expect(files.sort()).toEqual(
    expect.arrayContaining([
      'add-computed-column.yaml',
      'change-column-type.yaml',
      'rename-column.yaml',
      'set-not-null.yaml',
      'recompute-daily-totals.yaml',
      'backfill-orders-total.yaml',
    ]),
  );
});

test.each(files)('%s parses with parseSpec', (file) => {
  expect(() => parseSpec(YAML.parse(fs.readFileSync(path.join(dir, file), 'utf8')), file)).not.toThrow();
});

test('each example shows what its name says', () => {
  const steps = (f: string) => {
    const s = parsed.get(f)!;
    return s.kind === 'rollout' ? s.steps.map((x) => x.kind) : [];
  };
  expect(steps('add-computed-column.yaml')).toContain('addColumn');
  const change = parsed.get('change-column-type.yaml')!;
  expect(change.kind === 'rollout' && change.steps.some((s) => s.kind === 'alterColumn' && s.newType)).toBe(true);
  const rename = parsed.get('rename-column.yaml')!;
  expect(rename.kind === 'rollout' && rename.steps.some((s) => s.kind === 'alterColumn' && s.newName && !s.newType)).toBe(true);
  expect(steps('set-not-null.yaml')).toEqual(['backfill', 'gate', 'setNotNull']);
  const recompute = parsed.get('recompute-daily-totals.yaml')!;
  expect(recompute.kind === 'backfill' && recompute.range).toEqual({ from: '2024-01-01', to: '2024-02-01' });
});

test("every example spec the CLI's help names exists", () => {
  const cli = fs.readFileSync(path.join(__dirname, '..', '..', 'client', 'cli.ts'), 'utf8');
  for (const m of cli.matchAll(/examples\/([\w-]+\.yaml)/g)) expect(files).toContain(m[1]);
});
