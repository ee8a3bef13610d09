/**
 * How a backfill key value is stored and bound, without a statement of its
 * own: the text form in stagefill's tables (checkpoints, cursors, partition
 * bounds) and the typed bind parameters of `:lo` / `:hi`. A one-column key is
 * stored as the value's own text (as before composite keys existed), a
 * composite key as a JSON array of each column's text: `["3","1200"]`.
 * Pure; core/backfill/keys.ts formats the same values for people.
 */
import { onlyItem } from '../../core/common/checked';

/** A key column as the statements need it. */
export interface KeyColumn {
  name: string;
  /** format_type of the column, e.g. "bigint", "uuid", "text", "timestamp with time zone". */
  type: string;
  /** The column's collation when it is not the database default, quoted: "pg_catalog"."en-US-x-icu". */
  collation?: string;
}

/** The stored text of a key value from each column's text. */
export function encodeKey(values: readonly string[]): string {
  return onlyItem(values) ?? JSON.stringify(values);
}

/** Each column's text of a stored key value. */
export function decodeKey(value: string, arity: number): string[] {
  if (arity === 1) return [value];
  const parsed: unknown = JSON.parse(value);
  if (!Array.isArray(parsed) || parsed.length !== arity) throw new Error(`key value ${value} is not a ${arity}-column key`);
  return parsed.map(String);
}

/** A stored value from the database's own text (json_build_array output has spaces), made canonical. */
export function canonicalKey(raw: string, arity: number): string {
  return arity === 1 ? raw : encodeKey(decodeKey(raw, arity));
}

/** A cast of bind parameter `$n` to a column's type. */
function param(n: number, c: KeyColumn): string {
  return `$${n}::${c.type}`;
}

/** Bind parameters $first.. as one key value: `$1::bigint`, or `ROW($1::integer, $2::bigint)`. */
export function keyParams(cols: readonly KeyColumn[], first: number): string {
  const only = onlyItem(cols);
  if (only) return param(first, only);
  return `ROW(${cols.map((c, i) => param(first + i, c)).join(', ')})`;
}

/**
 * `:lo` / `:hi` in a transform or check become typed bind parameters: for a
 * one-column key `$1::type` / `$2::type` (as always), for a composite key row
 * values `ROW($1::t1, $2::t2)` / `ROW($3::t1, $4::t2)`, to compare with
 * `(tenant_id, id) >= :lo`. No value is ever spliced into SQL. The column's
 * own collation orders the comparison (a cast parameter takes the default).
 */
export function bindRange(sql: string, cols: readonly KeyColumn[]): string {
  const lo = keyParams(cols, 1);
  const hi = keyParams(cols, 1 + cols.length);
  return sql.replace(/(?<!:):lo\b/g, lo).replace(/(?<!:):hi\b/g, hi);
}

/** The parameter values for bindRange's statement over [lo, hi). */
export function rangeValues(lo: string, hi: string, arity: number): string[] {
  return [...decodeKey(lo, arity), ...decodeKey(hi, arity)];
}

/**
 * The uuid just after `u` in uuid order (byte order), or undefined after the
 * largest one: the open end past a uuid key's maximum.
 */
export function uuidAfter(u: string): string | undefined {
  const hex = u.replace(/-/g, '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) return undefined;
  const next = BigInt(`0x${hex}`) + 1n;
  if (next >= 1n << 128n) return undefined;
  const h = next.toString(16).padStart(32, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Type families and how the open end past a maximum is made for each (see db/backfill/keys.ts afterKey). */
export type SuccessorKind = 'plus-one' | 'plus-microsecond' | 'infinity' | 'uuid' | 'text' | 'bytea' | 'none';

export function successorKind(type: string): SuccessorKind {
  if (['smallint', 'integer', 'bigint', 'numeric', 'date'].includes(type)) return 'plus-one';
  if (/^(timestamp|time|interval)\b/.test(type)) return 'plus-microsecond';
  if (type === 'real' || type === 'double precision') return 'infinity';
  if (type === 'uuid') return 'uuid';
  if (['text', 'character varying', 'character', 'name', 'citext'].includes(type)) return 'text';
  if (type === 'bytea') return 'bytea';
  return 'none';
}
