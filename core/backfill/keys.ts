/**
 * Backfill keys, pure: one column or several (a composite key walked as a row
 * value), of any type Postgres orders with a default btree operator class.
 *
 * A key value travels and is stored as text (db/backfill/keys.ts: a one-column key as
 * the value's own text, a composite key as a JSON array of each column's
 * text, e.g. `["3","1200"]`). People see and type a composite value as a
 * tuple, `(3, 1200)`: this module. Only the database orders keys (the
 * column's type and collation decide); nothing here compares two values.
 */
import { itemAt } from '../common/checked';

export interface KeyColumn {
  name: string;
  /** format_type of the column, e.g. "bigint", "uuid", "text", "timestamp with time zone". */
  type: string;
  /** The column's collation when it is not the database default, quoted: "pg_catalog"."en-US-x-icu". */
  collation?: string;
}

/** The key columns of a spec's `key:` (one name or a list). */
export function keyNames(key: string | readonly string[]): string[] {
  return typeof key === 'string' ? [key] : [...key];
}

/** How a key reads in messages: `id`, `(tenant_id, id)`. */
export function keyLabel(key: string | readonly string[]): string {
  const names = keyNames(key);
  const [only] = names;
  return only !== undefined && names.length === 1 ? only : `(${names.join(', ')})`;
}

/**
 * The key's types as one string (stored in backfills.key_type and handed to
 * every lease): a plain type for one column without its own collation
 * ("bigint", as before), else a JSON array of "type[ COLLATE coll]".
 */
export function encodeKeyType(cols: readonly Pick<KeyColumn, 'type' | 'collation'>[]): string {
  const [only] = cols;
  if (only && cols.length === 1 && !only.collation) return only.type;
  return JSON.stringify(cols.map((c) => (c.collation ? `${c.type} COLLATE ${c.collation}` : c.type)));
}

export function decodeKeyType(keyType: string, names: readonly string[]): KeyColumn[] {
  const types: string[] = keyType.startsWith('[') ? (JSON.parse(keyType) as string[]) : [keyType];
  if (types.length !== names.length) throw new Error(`key type ${keyType} has ${types.length} columns; the key names ${names.length}`);
  return types.map((t, i) => {
    const name = itemAt(names, i, 'key column');
    const at = t.indexOf(' COLLATE ');
    return at < 0 ? { name, type: t } : { name, type: t.slice(0, at), collation: t.slice(at + ' COLLATE '.length) };
  });
}

/** A key value as people read it: `1200`, `(3, 1200)`; a part with commas, parentheses, quotes or spaces is double-quoted. */
export function formatKey(value: string, arity: number): string {
  if (arity === 1 || value === '') return value;
  let parts: string[];
  try {
    // the stored form of a composite value is a JSON array of each column's text (db/backfill/keys.ts encodeKey)
    const parsed: unknown = JSON.parse(value);
    if (!Array.isArray(parsed) || parsed.length !== arity) return value;
    parts = parsed.map(String);
  } catch {
    return value;
  }
  return `(${parts.map((p) => (/[\s,()"]/.test(p) || p === '' ? `"${p.replace(/"/g, '""')}"` : p)).join(', ')})`;
}

export function formatRange(lo: string, hi: string, arity: number): string {
  return `[${formatKey(lo, arity)}, ${formatKey(hi, arity)})`;
}

/**
 * A key value someone typed (`replay --from`, a spec's `range`): for a
 * composite key `(3, 1200)`, `3,1200` or `["3","1200"]`; parts may be
 * double-quoted. Each part is then cast by the database to its column's type.
 */
export function parseKeyInput(input: string, arity: number): string[] {
  if (arity === 1) return [input];
  const s = input.trim();
  let parts: string[] | undefined;
  if (s.startsWith('[')) {
    try {
      const j: unknown = JSON.parse(s);
      if (Array.isArray(j)) parts = j.map(String);
    } catch {
      parts = undefined;
    }
  } else {
    parts = splitTuple(s.startsWith('(') && s.endsWith(')') ? s.slice(1, -1) : s);
  }
  if (!parts || parts.length !== arity) {
    throw new Error(
      `"${input}" is not a value of a ${arity}-column key; write it as a tuple, e.g. "(${Array.from({ length: arity }, (_, i) => `v${i + 1}`).join(', ')})"`,
    );
  }
  return parts;
}

function splitTuple(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let wasQuoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charAt(i);
    if (quoted) {
      if (ch === '"' && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') {
      if (!wasQuoted) cur = cur.trim(); // blanks before an opening quote are not part of the value
      quoted = true;
      wasQuoted = true;
    } else if (ch === ',') {
      out.push(wasQuoted ? cur : cur.trim());
      cur = '';
      wasQuoted = false;
    } else if (!(wasQuoted && /\s/.test(ch))) cur += ch;
  }
  out.push(wasQuoted ? cur : cur.trim());
  return out;
}

/** The key's types for people: "bigint", "integer, bigint", "text COLLATE \"en-US-x-icu\"". */
export function keyTypeLabel(keyType: string): string {
  const types: string[] = keyType.startsWith('[') ? (JSON.parse(keyType) as string[]) : [keyType];
  return types.join(', ');
}
