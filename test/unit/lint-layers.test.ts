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
  ])('%s fails', (_name, files, message) => {
    const r = lint({ ...base, ...files });
    expect(r.code).toBe(1);
    expect(r.out).toContain(message);
  });
});
