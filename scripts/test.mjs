#!/usr/bin/env node
// The whole suite, in the order that fails fastest: layering lint, typecheck, build,
// unit tests, then integration tests against a real Temporal dev server and Postgres
// (started by jest's global setup). Ends with one plain line: "N passed, N failed".
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const args = process.argv.slice(2);
const only = args.includes('--unit') ? ['unit'] : args.includes('--integration') ? ['integration'] : ['unit', 'integration'];
const passthrough = args.filter((a) => !a.startsWith('--unit') && !a.startsWith('--integration'));
const npx = (bin) => path.join(root, 'node_modules', '.bin', bin);

function step(name, cmd, cmdArgs) {
  const t = Date.now();
  process.stdout.write(`\n== ${name}\n`);
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env: process.env });
  process.stdout.write(
    `== ${name}: ${r.status === 0 ? 'ok' : `failed (${r.status ?? r.signal})`} in ${((Date.now() - t) / 1000).toFixed(1)}s\n`,
  );
  return r.status === 0;
}

let passed = 0;
let failed = 0;
let ok = step('lint: layers', process.execPath, [path.join(root, 'scripts', 'lint-layers.mjs')]);
ok = step('lint: size', process.execPath, [path.join(root, 'scripts', 'lint-size.mjs')]) && ok;
ok = step('format (prettier --check)', npx('prettier'), ['--check', '.']) && ok;
ok = step('lint: eslint', npx('eslint'), ['.']) && ok;
ok = step('typecheck', npx('tsc'), ['-p', 'tsconfig.json', '--noEmit']) && ok;
ok = ok && step('build', npx('tsc'), ['-p', 'tsconfig.build.json']);
if (ok) {
  for (const project of only) {
    const out = path.join(os.tmpdir(), `stagefill-jest-${project}-${process.pid}.json`);
    const extra = project === 'integration' ? ['--runInBand'] : [];
    const good = step(`${project} tests`, npx('jest'), [
      '--selectProjects',
      project,
      ...extra,
      '--json',
      `--outputFile=${out}`,
      ...passthrough,
    ]);
    try {
      const r = JSON.parse(fs.readFileSync(out, 'utf8'));
      passed += r.numPassedTests;
      failed += r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
      if (process.env.STAGEFILL_JEST_JSON_DIR) fs.copyFileSync(out, path.join(process.env.STAGEFILL_JEST_JSON_DIR, `${project}.json`));
      fs.rmSync(out, { force: true });
    } catch {
      failed += 1; // jest died before writing its report
    }
    ok = good && ok;
  }
} else {
  failed += 1;
}
process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
process.exit(ok && failed === 0 ? 0 : 1);
