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
  'activities/backfill.ts': 'export const run = 1;\n',
  'activities/partition-plan.ts': 'export const planPartitions = 1;\n',
  'workflows/definitions.ts': 'export const pause = 1;\n',
  'workflows/backfill.ts': 'export const backfillWorkflow = 1;\n',
  'spec/index.ts': "import { rule } from '../plan/rule';\nexport const spec = rule;\n",
  'plan/rule.ts': 'export const rule = 1;\n',
  'plan/table-name.ts': 'export const parseTable = 1;\n',
  'db/identifiers.ts': "import { parseTable } from '../plan/table-name';\nexport const q = parseTable;\n",
  'db/sql.ts': 'export const q = `SELECT 1 FROM t WHERE ${"c"} IS NOT NULL`;\n',
};

describe('scripts/lint-layers.mjs', () => {
  test('a tree that keeps the rules passes', () => {
    const r = lint({
      ...base,
      'client/ok.ts':
        "import type { run } from '../activities/backfill';\nimport { planPartitions } from '../activities/partition-plan';\n" +
        "import { pause } from '../workflows/definitions';\nimport type { backfillWorkflow } from '../workflows/backfill';\nexport const x = [planPartitions, pause];\n",
      'plan/uses-spec-type.ts': "import type { spec } from '../spec/index';\nexport type S = typeof spec;\n",
      'db/uses-plan-type.ts': "import type { rule } from '../plan/rule';\nexport type R = typeof rule;\n",
    });
    expect(r.out).toContain('lint-layers: ok');
    expect(r.code).toBe(0);
  });

  test.each([
    [
      'client/ importing an activity at run time',
      { 'client/bad.ts': "import { run } from '../activities/backfill';\nexport const x = run;\n" },
      'client/ may not import activities/',
    ],
    [
      'client/ loading a workflow module at run time',
      { 'client/bad.ts': "import { backfillWorkflow } from '../workflows/backfill';\nexport const x = backfillWorkflow;\n" },
      'client/ may not import workflows/',
    ],
    [
      'plan/ importing spec/ at run time',
      { 'plan/bad.ts': "import { spec } from '../spec/index';\nexport const x = spec;\n" },
      'plan/ may not import spec/',
    ],
    [
      'db/ importing a plan/ rule other than the table-name module at run time',
      { 'db/bad.ts': "import { rule } from '../plan/rule';\nexport const x = rule;\n" },
      'db/ may not import plan/',
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
      'a run-time cycle through spec/, steps/ and plan/',
      {
        'plan/graph.ts': "import { kinds } from '../steps';\nexport const g = kinds;\n",
        'steps/index.ts': "import { k } from './k/plan';\nexport const kinds = [k];\n",
        'steps/k/plan.ts': "import { s } from './schema';\nexport const k = s;\n",
        'steps/k/schema.ts': "import { field } from '../../spec/fields';\nexport const s = field;\n",
        'spec/fields.ts': "import { g } from '../plan/graph';\nexport const field = g;\n",
      },
      'import cycle at run time',
    ],
  ])('%s fails', (_name, files, message) => {
    const r = lint({ ...base, ...files });
    expect(r.code).toBe(1);
    expect(r.out).toContain(message);
  });
});
