import { escapeIdentifier } from 'pg';

/** A table as stored in specs: schema and name, never pre-quoted. */
export interface TableRef {
  schema: string;
  name: string;
}

export function parseTable(qualified: string): TableRef {
  const dot = qualified.indexOf('.');
  return dot < 0 ? { schema: 'public', name: qualified } : { schema: qualified.slice(0, dot), name: qualified.slice(dot + 1) };
}

/** "schema"."table", every part through pg's escapeIdentifier. */
export function qualified(t: TableRef | string): string {
  const ref = typeof t === 'string' ? parseTable(t) : t;
  return `${escapeIdentifier(ref.schema)}.${escapeIdentifier(ref.name)}`;
}

export const ident = escapeIdentifier;

/** stagefill's own schema; one constant so every statement agrees. */
export const SCHEMA = 'stagefill';
export const own = (table: string): string => `${ident(SCHEMA)}.${ident(table)}`;
