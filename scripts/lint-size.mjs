// Keeps files and functions small enough to read in one sitting: a non-test .ts file over 400 lines, or a
// function over 120 lines (a declaration, a method, or a function or arrow assigned to a name), fails unless a
// comment at its top says why, in one line starting `size:` (`// size: one workflow loop, kept whole for
// replay`). For a file the comment sits before its first statement; for a function, in the comments just
// above it or as the first line of its body. A function's length leaves out the named functions inside it,
// which are measured on their own (a factory that returns its activities is as long as its own lines, not
// theirs). Functions are found with the TypeScript compiler's parser.
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

// the tree to check: the repository, or the folder given as the first argument (test/unit/lint-size.test.ts)
const root = process.argv[2] ? path.resolve(process.argv[2]) : path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const FILE_LINES = 400;
const FUNCTION_LINES = 120;
const TOPS = ['core', 'db', 'steps', 'activities', 'workflows', 'worker', 'client', 'devstack', 'bench', 'chaos', 'examples'];

// a line of a comment that starts with `size:` and gives a reason: `// size: ...`, `/* size: ...`, ` * size: ...`
const REASON_RE = /^\s*(?:\/\/|\/\*+|\*)\s*size:\s*(\S.*?)\s*(?:\*\/)?\s*$/m;

/** The reason one of `ranges` of comments in `text` gives, if any. */
function reasonIn(text, ranges) {
  for (const r of ranges ?? []) {
    const m = REASON_RE.exec(text.slice(r.pos, r.end));
    if (m) return m[1];
  }
  return undefined;
}

/** The name a function goes by, and the node whose leading comments are its top (a `const f = () => ...` statement). */
function named(node) {
  const nameOf = (n) => (n && (ts.isIdentifier(n) || ts.isStringLiteral(n) || ts.isPrivateIdentifier(n)) ? n.text : undefined);
  if (ts.isFunctionDeclaration(node)) return { name: nameOf(node.name) ?? 'default', top: node };
  if (ts.isMethodDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node))
    return { name: nameOf(node.name) ?? '(method)', top: node };
  if (ts.isConstructorDeclaration(node)) return { name: 'constructor', top: node };
  if (ts.isArrowFunction(node) || ts.isFunctionExpression(node)) {
    const p = node.parent;
    if (ts.isVariableDeclaration(p) && p.initializer === node) {
      // the comments above `export const f = ...` belong to the statement, not the declaration
      const statement = p.parent?.parent && ts.isVariableStatement(p.parent.parent) ? p.parent.parent : p;
      return { name: nameOf(p.name) ?? '(binding)', top: statement };
    }
    if ((ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) && p.initializer === node)
      return { name: nameOf(p.name) ?? '(property)', top: p };
  }
  return undefined;
}

const problems = [];
const excused = [];
let files = 0;

function check(file) {
  const rel = path.relative(root, file).split(path.sep).join('/');
  const text = fs.readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  files++;
  const lineOf = (pos) => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const lines = text.endsWith('\n') ? lineOf(text.length) - 1 : lineOf(text.length);
  if (lines > FILE_LINES) {
    // the file's top: the comments before its first statement
    const first = sf.statements[0];
    const reason =
      reasonIn(text, ts.getLeadingCommentRanges(text, 0)) ?? (first && reasonIn(text, ts.getLeadingCommentRanges(text, first.pos)));
    if (reason) excused.push(`${rel} (${lines} lines): ${reason}`);
    else problems.push(`${rel}: ${lines} lines (over ${FILE_LINES}); split it along its seams, or say why at its top (// size: <reason>)`);
  }
  // the lines of the named functions directly inside a function, which it does not count as its own
  const innerLines = (node) => {
    let n = 0;
    const look = (child) => {
      if (named(child)) n += lineOf(child.end) - lineOf(child.getStart(sf)) + 1;
      else ts.forEachChild(child, look);
    };
    ts.forEachChild(node, look);
    return n;
  };
  const visit = (node) => {
    const fn = named(node);
    if (fn) {
      const start = lineOf(node.getStart(sf));
      const length = lineOf(node.end) - start + 1 - innerLines(node);
      if (length > FUNCTION_LINES) {
        const body = node.body;
        const inBody = body && ts.isBlock(body) ? reasonIn(text, ts.getLeadingCommentRanges(text, body.getStart(sf) + 1)) : undefined;
        const reason = reasonIn(text, ts.getLeadingCommentRanges(text, fn.top.pos)) ?? inBody;
        if (reason) excused.push(`${rel}:${start} ${fn.name} (${length} lines): ${reason}`);
        else
          problems.push(
            `${rel}:${start}: function ${fn.name} is ${length} lines (over ${FUNCTION_LINES}); split it where a seam is, or say why at its top (// size: <reason>)`,
          );
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}

function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && !e.name.endsWith('.test.ts')) check(p);
  }
}
for (const top of TOPS) if (fs.existsSync(path.join(root, top))) walk(path.join(root, top));

if (problems.length) {
  console.error(problems.join('\n'));
  console.error(`\nlint-size: ${problems.length} problem(s) in ${files} files.`);
  process.exit(1);
}
if (excused.length) console.log(`over the limits, with the reason at their top:\n  ${excused.join('\n  ')}`);
console.log(`lint-size: ok (${files} files; none over ${FILE_LINES} lines, no function over ${FUNCTION_LINES}, without a reason)`);
