// Keeps the floors of docs/ARCHITECTURE.md honest. From the ground up: core/ (pure rules and spec
// schemas, by engine) -> db/ (every SQL statement) -> steps/ (one vertical slice per step kind) ->
// activities/ -> workflows/, with worker/, client/, devstack/ and bench/ at the edges. A floor imports
// only floors below it, no two folders (at any depth) import each other, SQL lives in db/ (or a step
// kind's sql.ts), and the code the workflow bundle loads stays deterministic (no Node APIs, no I/O
// libraries). It prints the floors in the order the imports give them; docs/ARCHITECTURE.md shows that line.
import fs from 'node:fs';
import path from 'node:path';

// the tree to check: the repository, or the folder given as the first argument (test/unit/lint-layers.test.ts)
const root = process.argv[2] ? path.resolve(process.argv[2]) : path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

// steps/ files the workflow and the client may load: the registry, the interface, the spec over it, the
// step graph and plan text, the fleet spec that wraps a spec, and each kind's schema.ts and plan.ts; the rest (apply.ts, sql.ts, the actions
// registry and what the kinds share there) is the slice's activity side
const STEPS_PURE_TOP = ['index.ts', 'types.ts', 'spec.ts', 'fleet-spec.ts', 'graph.ts', 'describe.ts', 'summary.ts'];

/** The floor a file stands on: its top folder, with steps/ split into its pure and its I/O side. */
function layerOf(rel) {
  const parts = rel.split(path.sep);
  const top = parts[0];
  if (top !== 'steps') return top;
  const base = parts[parts.length - 1];
  if (base.endsWith('.test.ts')) return 'test';
  if (parts.length === 2) return STEPS_PURE_TOP.includes(base) ? 'steps-pure' : 'steps-io';
  return ['schema.ts', 'plan.ts'].includes(base) ? 'steps-pure' : 'steps-io';
}

// which floors each floor may import (type-only imports of activities from workflows are how
// proxyActivities gets its types, and are erased at compile time)
const MAY_IMPORT = {
  core: ['core'],
  db: ['db', 'core'],
  'steps-pure': ['steps-pure', 'core'],
  'steps-io': ['steps-pure', 'steps-io', 'core', 'db'],
  activities: ['activities', 'db', 'core', 'steps-pure', 'steps-io'],
  workflows: ['workflows', 'core', 'steps-pure'],
  devstack: ['devstack', 'workflows'],
  worker: ['worker', 'activities', 'db', 'devstack', 'workflows', 'core', 'steps-pure'],
  // client/ reads the database through db/ functions; activities and workflows only as types, except
  // the files in RUNTIME_OK below
  client: ['client', 'worker', 'db', 'core', 'steps-pure', 'devstack'],
  bench: null,
  test: null,
  examples: ['client', 'core', 'steps-pure', 'workflows'],
};
// floors a floor may read as types only (erased at compile time)
const TYPE_ONLY_OK = { workflows: ['activities'], client: ['activities', 'workflows'] };
// single files a floor may load at run time from a floor it otherwise may not (or only as types):
// the signal/query names and search attributes shared by workflows and client (pure, so names
// cannot drift), and the one partition-plan builder, so `stagefill plan` shows what a run will use
const RUNTIME_OK = {
  client: ['workflows/definitions.ts', 'workflows/search-attributes.ts', 'activities/backfill/partition-plan.ts'],
};
// code the workflow bundle may load: no Node APIs, no I/O libraries (type-only imports are erased)
const NODE_FREE = ['workflows', 'core', 'steps-pure'];
const IO_LIBS = [
  'pg',
  'pino',
  'fs',
  'node:fs',
  'child_process',
  'node:child_process',
  'http',
  'node:http',
  'net',
  'node:net',
  '@temporalio/activity',
  '@temporalio/worker',
  '@temporalio/client',
];
const SQL_RE =
  /\b(SELECT\s+[\w*(]|INSERT\s+INTO|UPDATE\s+[\w".]+\s+SET|DELETE\s+FROM|ALTER\s+TABLE|CREATE\s+(TABLE|INDEX|SCHEMA|TRIGGER|OR REPLACE|VIEW)|DROP\s+(TABLE|SCHEMA|TRIGGER|VIEW|COLUMN|FUNCTION))/;
// a fragment spliced from a value: `${column} IS NOT NULL` quotes nothing; build it in db/ or sql.ts with ident()
const SQL_FRAGMENT_RE = /\$\{[^}]+\}\s*(IS\s+(NOT\s+)?NULL|(=|<>|>=|<=)\s*\$\d|::\w+)/;
const SQL_ALLOWED = ['db', 'test', 'bench', 'devstack', 'examples'];
const isSqlFile = (rel) => rel.split(path.sep)[0] === 'steps' && path.basename(rel) === 'sql.ts';

const problems = [];
// [importer, imported] of every run-time import, for the cycle check below
const runtimeEdges = [];
// [importer, imported] of every import between non-test files, types included, for the folder checks below
const allEdges = [];
const isTestFile = (rel) => rel.split(path.sep)[0] === 'test' || rel.endsWith('.test.ts');
const walkedTops = []; // every top folder with a non-test file, imports or not
function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (/\.ts$/.test(e.name) && !e.name.endsWith('.d.ts')) check(p);
  }
}
function check(file) {
  const rel = path.relative(root, file);
  const top = rel.split(path.sep)[0];
  const layer = layerOf(rel);
  const src = fs.readFileSync(file, 'utf8');
  if (!isTestFile(rel) && !walkedTops.includes(top)) walkedTops.push(top);
  const allowed = MAY_IMPORT[layer];
  for (const m of src.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
    const isType = Boolean(m[2]);
    const spec = m[3];
    if (spec.startsWith('.')) {
      const resolved = path.relative(root, path.resolve(path.dirname(file), spec));
      const targetFile =
        fs.existsSync(path.join(root, resolved)) && fs.statSync(path.join(root, resolved)).isDirectory()
          ? path.join(resolved, 'index.ts')
          : `${resolved}.ts`;
      const target = layerOf(targetFile);
      if (!isType) runtimeEdges.push([rel, targetFile]);
      if (!isTestFile(rel) && !isTestFile(targetFile)) allEdges.push([rel, targetFile]);
      const isRuntimeOk = (RUNTIME_OK[layer] ?? []).includes(targetFile.split(path.sep).join('/'));
      if (allowed && !allowed.includes(target) && !isRuntimeOk && !(isType && (TYPE_ONLY_OK[layer] ?? []).includes(target))) {
        problems.push(
          `${rel}: ${layer}/ may not import ${target}/ (${spec})${(TYPE_ONLY_OK[layer] ?? []).includes(target) ? ' except as `import type`' : ''}`,
        );
      }
    } else if (NODE_FREE.includes(layer) && !isType) {
      if (spec.startsWith('node:') || IO_LIBS.includes(spec) || ['os', 'path', 'crypto'].includes(spec)) {
        problems.push(`${rel}: ${layer} runs in the workflow sandbox and may not import ${spec} (import type is fine)`);
      }
    }
  }
  if (top === 'workflows' && /\b(Math\.random|setTimeout|setInterval|process\.)/.test(src.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, ''))) {
    problems.push(`${rel}: workflow code may not use Math.random, timers or process (use workflow APIs)`);
  }
  if (!SQL_ALLOWED.includes(layer) && !isSqlFile(rel)) {
    src.split('\n').forEach((line, i) => {
      if (/^\s*(\/\/|\/?\*)/.test(line) || /lint-layers: ok/.test(line)) return;
      if (SQL_RE.test(line)) problems.push(`${rel}:${i + 1}: SQL outside db/ (or a step kind's sql.ts): ${line.trim().slice(0, 100)}`);
      else if (SQL_FRAGMENT_RE.test(line))
        problems.push(
          `${rel}:${i + 1}: SQL fragment built outside db/ (or a step kind's sql.ts); quote identifiers there with ident(): ${line.trim().slice(0, 100)}`,
        );
    });
  }
}
for (const top of [...new Set(Object.keys(MAY_IMPORT).map((l) => l.split('-')[0]))])
  if (fs.existsSync(path.join(root, top))) walk(path.join(root, top));
// the pure floors load each other's files at run time: no file may reach itself again through those
// imports (a module cycle loads half-initialised modules)
const PURE_CORE = ['core', 'steps-pure'];
const graph = new Map();
for (const [from, to] of runtimeEdges) {
  if (!PURE_CORE.includes(layerOf(from)) || !PURE_CORE.includes(layerOf(to))) continue;
  if (!graph.has(from)) graph.set(from, []);
  graph.get(from).push(to);
}
const state = new Map(); // 1: on the path, 2: done
const reported = new Set();
function visit(file, trail) {
  if (state.get(file) === 2) return;
  if (state.get(file) === 1) {
    const cycle = [...trail.slice(trail.indexOf(file)), file];
    const key = [...cycle.slice(0, -1)].sort().join(' ');
    if (!reported.has(key)) {
      reported.add(key);
      problems.push(
        `import cycle at run time: ${cycle.join(' -> ')} (make one of these imports \`import type\`, or move the shared rule down into core/)`,
      );
    }
    return;
  }
  state.set(file, 1);
  for (const next of graph.get(file) ?? []) visit(next, [...trail, file]);
  state.set(file, 2);
}
for (const file of [...graph.keys()].sort()) visit(file, []);

/**
 * The two folders an import runs between, at the depth where the two paths part:
 * workflows/rollout/x.ts -> workflows/backfill/y.ts runs between workflows/rollout and
 * workflows/backfill. An import inside one folder, or between a folder's own files and its
 * subfolders (a registry gathering its kinds, a kind using the registry's interface, an index.ts),
 * stays in one wing and runs between no two folders.
 */
function folderPair(from, to) {
  const a = from.split(path.sep);
  const b = to.split(path.sep);
  let i = 0;
  while (i < a.length - 1 && i < b.length - 1 && a[i] === b[i]) i++;
  if (i === a.length - 1 || i === b.length - 1) return undefined;
  return [a.slice(0, i + 1).join('/'), b.slice(0, i + 1).join('/')];
}
// no two folders, at any depth, import each other (types included: a type import is a dependency too)
const folderEdges = new Map(); // 'a -> b' -> the first import seen that runs from a to b
for (const [from, to] of allEdges) {
  const pair = folderPair(from, to);
  const key = pair && pair.join(' -> ');
  if (key && !folderEdges.has(key)) folderEdges.set(key, `${from} -> ${to}`);
}
for (const [key, there] of [...folderEdges].sort()) {
  const [a, b] = key.split(' -> ');
  const back = folderEdges.get(`${b} -> ${a}`);
  if (back && a < b)
    problems.push(
      `folders import each other: ${a} <-> ${b} (${there}; ${back}); move what both use down a floor, or into the folder that holds both`,
    );
}

// the floors as the imports have them: a top folder stands one above the highest floor it imports
const tops = new Map(walkedTops.map((t) => [t, new Set()]));
for (const [from, to] of allEdges) {
  const [f, t] = [from.split(path.sep)[0], to.split(path.sep)[0]];
  if (!tops.has(f)) tops.set(f, new Set());
  if (!tops.has(t)) tops.set(t, new Set());
  if (f !== t) tops.get(f).add(t);
}
const level = new Map();
let ring;
function levelOf(top, trail) {
  if (level.has(top)) return level.get(top);
  if (trail.includes(top)) {
    ring ??= [...trail.slice(trail.indexOf(top)), top];
    return 0;
  }
  let l = 0;
  for (const below of tops.get(top) ?? []) l = Math.max(l, levelOf(below, [...trail, top]) + 1);
  if (!ring) level.set(top, l);
  return l;
}
for (const top of [...tops.keys()].sort()) levelOf(top, []);
if (ring && ring.length > 3) problems.push(`floors import each other in a ring: ${ring.join(' -> ')}`);
const floors = [];
for (const [top, l] of level) (floors[l] ??= []).push(top);
const order = floors
  .filter(Boolean)
  .map((f) => f.sort().join(' | '))
  .join(' < ');

if (problems.length) {
  console.error(problems.join('\n'));
  console.error(`\nlint-layers: ${problems.length} problem(s). See docs/ARCHITECTURE.md for the flow.`);
  process.exit(1);
}
// docs/ARCHITECTURE.md shows this line as it is (test/unit/lint-layers.test.ts compares them)
console.log(`floors, from the ground up: ${order}`);
console.log('lint-layers: ok');
