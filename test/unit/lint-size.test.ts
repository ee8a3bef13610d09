import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const SCRIPT = path.join(__dirname, '..', '..', 'scripts', 'lint-size.mjs');

/** Runs the size check over a temp tree made of `files` (path -> source); its exit code and output. */
function lint(files: Record<string, string>): { code: number | null; out: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lint-size-'));
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

const lines = (n: number, text = 'x = x + 1;') => Array.from({ length: n }, () => `  ${text}`).join('\n');
/** A function declaration of `n` lines in all. */
const fn = (name: string, n: number, top = '') => `export function ${name}(x: number): number {\n${top}${lines(n - 3)}\n  return x;\n}\n`;

describe('scripts/lint-size.mjs', () => {
  test('the repository passes', () => {
    const r = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    expect(r.stdout).toContain('lint-size: ok');
    expect(r.status).toBe(0);
  });

  test('small files and functions pass; test files are not measured', () => {
    const r = lint({
      'core/a.ts': fn('small', 120),
      'core/a.test.ts': fn('huge', 500),
      'test/unit/b.ts': fn('huge', 500),
    });
    expect(r.out).toContain('lint-size: ok (1 files;');
    expect(r.code).toBe(0);
  });

  test.each([
    [
      'a file over 400 lines',
      { 'db/big.ts': `${Array.from({ length: 401 }, (_, i) => `export const c${i} = ${i};`).join('\n')}\n` },
      'db/big.ts: 401 lines',
    ],
    ['a function declaration over 120 lines', { 'core/f.ts': fn('long', 121) }, 'core/f.ts:1: function long is 121 lines'],
    [
      'an arrow assigned to a name',
      { 'client/a.ts': `export const run = (x: number) => {\n${lines(120)}\n  return x;\n};\n` },
      'client/a.ts:1: function run is 123 lines',
    ],
    [
      'a method',
      { 'worker/m.ts': `export class K {\n  go(x: number): number {\n${lines(120)}\n    return x;\n  }\n}\n` },
      'worker/m.ts:2: function go is 123 lines',
    ],
    ['a comment that only mentions size', { 'core/f.ts': `// the chunk size: 5000\n${fn('long', 121)}` }, 'function long is 121 lines'],
  ])('%s fails', (_name, files, message) => {
    const r = lint(files);
    expect(r.code).toBe(1);
    expect(r.out).toContain(message);
  });

  test('a long function or file passes with its reason at its top, and the output lists it', () => {
    const r = lint({
      'core/above.ts': `// size: a table of cases\n${fn('above', 130)}`,
      'core/inside.ts': fn('inside', 130, '  // size: one workflow loop, kept whole for replay\n'),
      'db/big.ts': `/**\n * The statements of one thing.\n * size: one statement per line, read top to bottom\n */\n${Array.from({ length: 401 }, (_, i) => `export const c${i} = ${i};`).join('\n')}\n`,
    });
    expect(r.code).toBe(0);
    expect(r.out).toContain('core/above.ts:2 above (130 lines): a table of cases');
    expect(r.out).toContain('core/inside.ts:1 inside (131 lines): one workflow loop, kept whole for replay');
    expect(r.out).toContain('db/big.ts (405 lines): one statement per line, read top to bottom');
  });

  test('a function does not count the named functions inside it, which are measured on their own', () => {
    const inner = (name: string) => `  const ${name} = (x: number) => {\n${lines(60)}\n    return x;\n  };\n`;
    const r = lint({ 'activities/f.ts': `export function factory() {\n${inner('a')}${inner('b')}  return { a, b };\n}\n` });
    expect(r.code).toBe(0);
    const long = lint({
      'activities/f.ts': `export function factory() {\n${inner('a')}${inner('b')}${lines(130)}\n  return { a, b };\n}\n`,
    });
    expect(long.out).toContain('function factory is 133 lines');
  });
});
