import type { Queryable } from '../pool';
import { qualified, ident } from '../identifiers';
import { parseTable } from '../../core/common/table-name';
import { oneRow } from '../rows';

/**
 * DDL and catalog reads on the user's tables that more than one step kind
 * uses. Identifiers go through `ident` / `qualified`; values are bound. The
 * user's own SQL (expressions, sql steps) is spliced as written: running it
 * is what the spec asks for.
 */

/** DDL waits at most `lockTimeoutMs` for its lock instead of queueing live traffic behind it (this transaction only). */
export async function setDdlTimeouts(db: Queryable, lockTimeoutMs: number): Promise<void> {
  // SET cannot take bind parameters; set_config(..., is_local => true) can.
  await db.query(`SELECT set_config('lock_timeout', $1, true)`, [`${lockTimeoutMs}ms`]);
}

/** The same for a plain connection outside a transaction (statements that cannot run in one); `resetSessionTimeouts` before it goes back to the pool. */
export async function setSessionDdlTimeouts(db: Queryable, lockTimeoutMs: number): Promise<void> {
  await db.query(`SELECT set_config('lock_timeout', $1, false)`, [`${lockTimeoutMs}ms`]);
}

export async function resetSessionTimeouts(db: Queryable): Promise<void> {
  await db.query('RESET lock_timeout');
}

export interface ColumnInfo {
  name: string;
  type: string;
  notNull: boolean;
}

export async function tableColumns(db: Queryable, table: string): Promise<ColumnInfo[]> {
  const t = parseTable(table);
  const { rows } = await db.query<ColumnInfo>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull"
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [t.schema, t.name],
  );
  return rows;
}

/**
 * Plans `expr` over the table's rows without reading one: an unknown column
 * or a type mismatch fails here, not later in the trigger of every write.
 */
export async function checkRowExpression(db: Queryable, table: string, expr: string, type: string): Promise<void> {
  await db.query(`SELECT (${expr})::${type} FROM ${qualified(table)} LIMIT 0`);
}

export async function dropColumn(db: Queryable, table: string, column: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} DROP COLUMN IF EXISTS ${ident(column)}`);
}

export async function renameColumn(db: Queryable, table: string, from: string, to: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} RENAME COLUMN ${ident(from)} TO ${ident(to)}`);
}

/** NOT VALID: only new writes are checked, so the ALTER holds its lock for an instant, not a scan. */
export async function addCheckNotValid(db: Queryable, table: string, name: string, expression: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} ADD CONSTRAINT ${ident(name)} CHECK (${expression}) NOT VALID`);
}

/** The scan runs under SHARE UPDATE EXCLUSIVE: reads and writes carry on meanwhile. */
export async function validateConstraint(db: Queryable, table: string, name: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} VALIDATE CONSTRAINT ${ident(name)}`);
}

export async function dropConstraint(db: Queryable, table: string, name: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} DROP CONSTRAINT IF EXISTS ${ident(name)}`);
}

export async function constraintExists(db: Queryable, table: string, name: string): Promise<boolean> {
  const t = parseTable(table);
  const { rows } = await db.query(
    `SELECT 1 FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND k.conname = $3`,
    [t.schema, t.name, name],
  );
  return rows.length > 0;
}

/** With a valid CHECK (col IS NOT NULL) in place Postgres skips the full-table scan (PG 12+). */
export async function setColumnNotNull(db: Queryable, table: string, column: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} ALTER COLUMN ${ident(column)} SET NOT NULL`);
}

export async function dropColumnNotNull(db: Queryable, table: string, column: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} ALTER COLUMN ${ident(column)} DROP NOT NULL`);
}

/** A sql step's apply or revert, as written (may hold several statements). */
export async function runUserStatements(db: Queryable, text: string): Promise<void> {
  await db.query(text);
}

export async function transactionTime(db: Queryable): Promise<Date> {
  const { rows } = await db.query<{ now: Date }>('SELECT now() AS now');
  return oneRow({ rows }, 'now()').now;
}

export async function schemaExists(db: Queryable, schema: string): Promise<boolean> {
  const { rows } = await db.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [schema]);
  return rows.length > 0;
}

/** The transform of the backfill that fills a column a step added: `up` over each row of a key range. */
export function stepBackfillTransform(table: string, column: string, up: string, key: string): string {
  return `UPDATE ${qualified(table)} SET ${ident(column)} = (${up}) WHERE ${ident(key)} >= :lo AND ${ident(key)} < :hi`;
}
