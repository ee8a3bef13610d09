/**
 * Column references in SQL text, rewritten without parsing the whole
 * statement: a small tokenizer that knows string literals (also E'' and
 * dollar-quoted), quoted identifiers and comments, so only identifier tokens
 * are ever touched. Pure: used by the column resolver (a step naming `qty`
 * after an alterColumn of `qty` means the new column) and the duplication
 * planner (a CHECK or index over the old column, rebuilt over the new one).
 */
import { itemAt } from '../common/checked';

export interface Token {
  kind: 'word' | 'quoted' | 'string' | 'comment' | 'space' | 'other';
  text: string;
}

export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql.charAt(i);
    const rest = sql.slice(i);
    if (/\s/.test(c)) {
      const m = /^\s+/.exec(rest)!;
      out.push({ kind: 'space', text: m[0] });
      i += m[0].length;
    } else if (rest.startsWith('--')) {
      const end = sql.indexOf('\n', i);
      const stop = end < 0 ? n : end;
      out.push({ kind: 'comment', text: sql.slice(i, stop) });
      i = stop;
    } else if (rest.startsWith('/*')) {
      const end = sql.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      out.push({ kind: 'comment', text: sql.slice(i, stop) });
      i = stop;
    } else if (c === "'" || ((c === 'E' || c === 'e') && sql[i + 1] === "'")) {
      const isEscaped = c !== "'";
      const j = closingQuote(sql, i + (isEscaped ? 2 : 1), "'", isEscaped);
      out.push({ kind: 'string', text: sql.slice(i, j + 1) });
      i = j + 1;
    } else if (c === '"') {
      const j = closingQuote(sql, i + 1, '"', false);
      out.push({ kind: 'quoted', text: sql.slice(i, j + 1) });
      i = j + 1;
    } else if (c === '$' && /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.test(rest)) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(rest)![0];
      const end = sql.indexOf(tag, i + tag.length);
      const stop = end < 0 ? n : end + tag.length;
      out.push({ kind: 'string', text: sql.slice(i, stop) });
      i = stop;
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      const m = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/.exec(rest)!;
      out.push({ kind: 'word', text: m[0] });
      i += m[0].length;
    } else {
      out.push({ kind: 'other', text: c });
      i += 1;
    }
  }
  return out;
}

/** The index of the quote closing a literal whose text starts at `from` (a doubled quote is part of it; a backslash escapes in E''), or the end. */
function closingQuote(sql: string, from: number, quote: "'" | '"', isBackslashEscaped: boolean): number {
  let j = from;
  for (; j < sql.length; j++) {
    if (isBackslashEscaped && sql[j] === '\\') j++;
    else if (sql[j] === quote) {
      if (sql[j + 1] !== quote) break;
      j++;
    }
  }
  return j;
}

/** The name an identifier token stands for: bare words fold to lower case, quoted ones are exact. */
export function identifierName(t: Token): string | undefined {
  if (t.kind === 'word') return t.text.toLowerCase();
  if (t.kind === 'quoted') return t.text.slice(1, -1).replace(/""/g, '"');
  return undefined;
}

/** An identifier as Postgres needs it written: bare when that reads back the same, else double-quoted. */
export function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) && !RESERVED.has(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

// enough of Postgres' reserved words that a column named like one is quoted
const RESERVED = new Set(
  'all analyse analyze and any array as asc asymmetric both case cast check collate column constraint create current_catalog current_date current_role current_time current_timestamp current_user default deferrable desc distinct do else end except false fetch for foreign from grant group having in initially intersect into lateral leading limit localtime localtimestamp not null offset on only or order placing primary references returning select session_user some symmetric table then to trailing true union unique user using variadic when where window with'.split(
    ' ',
  ),
);

function nextSignificant(tokens: Token[], i: number, step: 1 | -1): Token | undefined {
  for (let j = i + step; j >= 0 && j < tokens.length; j += step) {
    const t = itemAt(tokens, j, 'token');
    if (t.kind !== 'space' && t.kind !== 'comment') return t;
  }
  return undefined;
}

/**
 * Every reference to a column named in `renames` (physical or logical name
 * -> the name to write instead) rewritten. A word followed by `(` is a
 * function, one followed by `.` a table or schema, one after `::` a type:
 * those stay.
 */
export function rewriteColumnRefs(sql: string, renames: Record<string, string>): string {
  const tokens = tokenize(sql);
  return tokens
    .map((t, i) => {
      const name = identifierName(t);
      const to = name !== undefined && Object.prototype.hasOwnProperty.call(renames, name) ? renames[name] : undefined;
      if (to === undefined) return t.text;
      const next = nextSignificant(tokens, i, 1);
      const prev = nextSignificant(tokens, i, -1);
      const prev2 = prev ? nextSignificant(tokens, tokens.indexOf(prev), -1) : undefined;
      if (next?.text === '(' || next?.text === '.') return t.text;
      if (prev?.text === ':' && prev2?.text === ':') return t.text;
      return quoteIdent(to);
    })
    .join('');
}

/** The column names an expression reads (lower-cased bare words and exact quoted ones, functions and types left out); a superset is fine. */
export function referencedNames(sql: string): Set<string> {
  const tokens = tokenize(sql);
  const out = new Set<string>();
  tokens.forEach((t, i) => {
    const name = identifierName(t);
    if (name === undefined) return;
    const next = nextSignificant(tokens, i, 1);
    const prev = nextSignificant(tokens, i, -1);
    const prev2 = prev ? nextSignificant(tokens, tokens.indexOf(prev), -1) : undefined;
    if (next?.text === '(' || next?.text === '.' || (prev?.text === ':' && prev2?.text === ':')) return;
    out.add(name);
  });
  return out;
}
