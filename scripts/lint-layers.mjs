#!/usr/bin/env node
// Keeps the flow of ../shared/STYLE.md honest: spec -> plan -> workflows -> activities -> db,
// with client/ and worker/ at the edges. Nothing lower imports anything higher; SQL lives in db/;
// workflow code stays deterministic (no Node APIs, no I/O libraries).
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const LAYERS = ['spec', 'plan', 'workflows', 'activities', 'db'];
// which top-level folders each folder may import (type-only imports of activities from workflows are how
// proxyActivities gets its types, and are erased at compile time)
const MAY_IMPORT = {
  spec: ['spec', 'plan'],
  plan: ['plan', 'spec'],
  workflows: ['workflows', 'plan', 'spec'],
  activities: ['activities', 'db', 'plan', 'spec'],
  db: ['db'],
  worker: ['worker', 'activities', 'db', 'devstack', 'workflows', 'plan', 'spec'],
  client: ['client', 'worker', 'workflows', 'activities', 'db', 'plan', 'spec', 'devstack'],
  devstack: ['devstack', 'workflows'],
  bench: null,
  test: null,
  examples: ['client', 'spec', 'plan', 'workflows'],
};
const TYPE_ONLY_OK = { workflows: ['activities'] };
const NODE_FREE = ['workflows', 'plan'];
const IO_LIBS = ['pg', 'pino', 'fs', 'node:fs', 'child_process', 'node:child_process', 'http', 'node:http', 'net', 'node:net'];
const SQL_RE = /\b(SELECT\s+[\w*(]|INSERT\s+INTO|UPDATE\s+[\w".]+\s+SET|DELETE\s+FROM|ALTER\s+TABLE|CREATE\s+(TABLE|INDEX|SCHEMA|TRIGGER|OR REPLACE|VIEW)|DROP\s+(TABLE|SCHEMA|TRIGGER|VIEW|COLUMN|FUNCTION))/;
const SQL_ALLOWED = ['db', 'test', 'bench', 'devstack', 'examples'];

const problems = [];
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
  const src = fs.readFileSync(file, 'utf8');
  const allowed = MAY_IMPORT[top];
  for (const m of src.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
    const isType = Boolean(m[2]);
    const spec = m[3];
    if (spec.startsWith('.')) {
      const target = path.relative(root, path.resolve(path.dirname(file), spec)).split(path.sep)[0];
      if (allowed && !allowed.includes(target) && !(isType && (TYPE_ONLY_OK[top] ?? []).includes(target))) {
        problems.push(`${rel}: ${top}/ may not import ${target}/ (${spec})`);
      }
    } else if (NODE_FREE.includes(top)) {
      if (spec.startsWith('node:') || IO_LIBS.includes(spec) || ['os', 'path', 'crypto'].includes(spec)) {
        problems.push(`${rel}: ${top}/ runs in the workflow sandbox and may not import ${spec}`);
      }
    }
  }
  if (top === 'spec' && !rel.endsWith('load.ts')) {
    for (const m of src.matchAll(/from\s+['"](node:[^'"]+|fs|path|os|crypto)['"]/g)) problems.push(`${rel}: spec/ schemas are used in workflows; keep ${m[1]} in spec/load.ts`);
  }
  if (top === 'workflows' && /\b(Math\.random|setTimeout|setInterval|process\.)/.test(src.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, ''))) {
    problems.push(`${rel}: workflow code may not use Math.random, timers or process (use workflow APIs)`);
  }
  if (!SQL_ALLOWED.includes(top)) {
    src.split('\n').forEach((line, i) => {
      if (SQL_RE.test(line) && !/^\s*(\/\/|\*)/.test(line) && !/lint-layers: ok/.test(line)) problems.push(`${rel}:${i + 1}: SQL outside db/: ${line.trim().slice(0, 100)}`);
    });
  }
}
for (const top of Object.keys(MAY_IMPORT)) if (fs.existsSync(path.join(root, top))) walk(path.join(root, top));
if (problems.length) {
  console.error(problems.join('\n'));
  console.error(`\nlint-layers: ${problems.length} problem(s). See ../shared/STYLE.md for the flow.`);
  process.exit(1);
}
console.log('lint-layers: ok');
