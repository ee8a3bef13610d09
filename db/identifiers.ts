import { escapeIdentifier } from 'pg';
import type { TableRef } from '../core/common/table-name';
import { parseTable } from '../core/common/table-name';

// the one table-name module (core/common/table-name.ts, pure and importing nothing) parses; this one quotes

/** "schema"."table", every part through pg's escapeIdentifier. */
export function qualified(t: TableRef | string): string {
  const ref = typeof t === 'string' ? parseTable(t) : t;
  return `${escapeIdentifier(ref.schema)}.${escapeIdentifier(ref.name)}`;
}

export const ident = escapeIdentifier;

/** stagefill's own schema; one constant so every statement agrees. */
export const SCHEMA = 'stagefill';
export const own = (table: string): string => `${ident(SCHEMA)}.${ident(table)}`;
