import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const SCRIPT = path.join(__dirname, '..', '..', 'scripts', 'lint-layers.mjs');

/** Runs the layer lint over a temp tree made of `files` (path -> source); its exit code and output. */
function lint(files: Record<string, string>): { code: number | null; out: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lint-layers-'));
  try {
    for (const [rel, src] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), src);
    }
    const r = spawnSync(process.execPath, [SCRIPT, dir], { encoding: 'utf8' });
    return { code: r.status, out: r.stdout + r.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const base = {
  'activities/backfill/index.ts': 'export const run = 1;\n',
  'activities/backfill/partition-plan.ts': 'export const planPartitions = 1;\n',
  'workflows/definitions.ts': 'export const pause = 1;\n',
  'workflows/backfill/workflow.ts': 'export const backfillWorkflow = 1;\n',
  'core/common/rule.ts': 'export const rule = 1;\n',
  'core/common/table-name.ts': 'export const parseTable = 1;\n',
  'steps/spec.ts': "import { rule } from '../core/common/rule';\nexport const spec = rule;\n",
  'db/identifiers.ts': "import { parseTable } from '../core/common/table-name';\nexport const q = parseTable;\n",
  'db/sql.ts': 'export const q = `SELECT 1 FROM t WHERE ${"c"} IS NOT NULL`;\n',
};

describe('scripts/lint-layers.mjs', () => {
  test('a tree that keeps the rules passes', () => {
    const r = lint({
      ...base,
      'client/ok.ts':
        "import type { run } from '../activities/backfill';\nimport { planPartitions } from '../activities/backfill/partition-plan';\n" +
        "import { pause } from '../workflows/definitions';\nimport type { backfillWorkflow } from '../workflows/backfill/workflow';\nexport const x = [planPartitions, pause];\n",
      'db/uses-core.ts': "import { rule } from '../core/common/rule';\nexport const r = rule;\n",
      // a folder and its own subfolders are one wing: the registry gathers a kind, the kind uses the registry's interface
      'steps/types.ts': 'export interface Kind { name: string }\n',
      'steps/index.ts': "import { k } from './k/plan';\nexport const kinds = [k];\n",
      'steps/k/plan.ts': "import type { Kind } from '../types';\nexport const k: Kind = { name: 'k' };\n",
    });
    expect(r.out).toContain('lint-layers: ok');
    expect(r.code).toBe(0);
  });

  test('prints the floors in the order the imports give them', () => {
    const r = lint({ ...base, 'client/ok.ts': "import { pause } from '../workflows/definitions';\nexport const x = pause;\n" });
    expect(r.out).toContain('floors, from the ground up: activities | core | workflows < client | db | steps\n');
  });

  test('docs/ARCHITECTURE.md draws the floors in the order the lint prints for this repository', () => {
    const r = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    const line = r.stdout.split('\n').find((l) => l.startsWith('floors, from the ground up: '));
    expect(line).toMatch(/^floors, from the ground up: core < db < steps < activities < workflows/);
    const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'ARCHITECTURE.md'), 'utf8');
    expect(doc).toContain(line);
  });

  test.each([
    [
      'client/ importing an activity at run time',
      { 'client/bad.ts': "import { run } from '../activities/backfill';\nexport const x = run;\n" },
      'client/ may not import activities/',
    ],
    [
      'client/ loading a workflow module at run time',
      { 'client/bad.ts': "import { backfillWorkflow } from '../workflows/backfill/workflow';\nexport const x = backfillWorkflow;\n" },
      'client/ may not import workflows/',
    ],
    [
      'core/ importing steps/ at run time',
      { 'core/rollout/bad.ts': "import { spec } from '../../steps/spec';\nexport const x = spec;\n" },
      'core/ may not import steps-pure/',
    ],
    [
      'core/ importing steps/, even as a type',
      { 'core/rollout/bad.ts': "import type { spec } from '../../steps/spec';\nexport type S = typeof spec;\n" },
      'core/ may not import steps-pure/',
    ],
    [
      'core/ importing db/, even as a type',
      { 'core/rollout/bad.ts': "import type { q } from '../../db/identifiers';\nexport type X = typeof q;\n" },
      'core/ may not import db/',
    ],
    [
      'db/ importing steps/',
      { 'db/bad.ts': "import { spec } from '../steps/spec';\nexport const x = spec;\n" },
      'db/ may not import steps-pure/',
    ],
    [
      'core/ reaching for Node',
      { 'core/common/bad.ts': "import fs from 'node:fs';\nexport const x = fs;\n" },
      'core runs in the workflow sandbox and may not import node:fs',
    ],
    [
      'a SQL statement in activities/',
      { 'activities/bad.ts': "export const q = 'DELETE FROM orders WHERE id = $1';\n" },
      'activities/bad.ts:1: SQL outside db/',
    ],
    [
      'an unquoted SQL fragment in activities/',
      { 'activities/bad.ts': 'export const where = (column: string) => `${column} IS NOT NULL`;\n' },
      'activities/bad.ts:1: SQL fragment built outside db/',
    ],
    [
      'a run-time cycle through steps/ and core/',
      {
        'steps/graph.ts': "import { kinds } from '.';\nexport const g = kinds;\n",
        'steps/index.ts': "import { k } from './k/plan';\nexport const kinds = [k];\n",
        'steps/k/plan.ts': "import { s } from './schema';\nexport const k = s;\n",
        'steps/k/schema.ts': "import { g } from '../graph';\nexport const s = g;\n",
      },
      'import cycle at run time',
    ],
    [
      'two folders importing each other, deeper down (a type import counts)',
      {
        'workflows/rollout/chain.ts': "import { handover } from '../backfill/handover';\nexport const chain = handover;\n",
        'workflows/backfill/handover.ts':
          "import type { chain } from '../rollout/chain';\nexport const handover = 1;\nexport type C = typeof chain;\n",
      },
      'folders import each other: workflows/backfill <-> workflows/rollout',
    ],
    [
      'top folders importing each other in a ring',
      {
        'bench/a.ts': "import { b } from '../examples/b';\nexport const a = b;\n",
        'examples/b.ts': "import { c } from '../client/c';\nexport const b = c;\n",
        'client/c.ts': "import type { a } from '../bench/a';\nexport const c = 1;\nexport type A = typeof a;\n",
      },
      'floors import each other in a ring: bench -> examples -> client -> bench',
    ],
  ])('%s fails', (_name, files, message) => {
    const r = lint({ ...base, ...files });
    expect(r.code).toBe(1);
    expect(r.out).toContain(message);
  });
});
