import crypto from 'node:crypto';
import { ident } from '../../db/identifiers';

/** The helper CHECK (col IS NOT NULL) a setNotNull validates before SET NOT NULL. */
export function notNullCheckName(table: string, column: string): string {
  const h = crypto.createHash('sha256').update(`${table}\0${column}`).digest('hex').slice(0, 8);
  return `${column.slice(0, 40)}_stagefill_nn_${h}`;
}

/** The helper check's expression: the column quoted, so mixed-case names work. */
export function notNullCheckExpression(column: string): string {
  return `${ident(column)} IS NOT NULL`;
}
