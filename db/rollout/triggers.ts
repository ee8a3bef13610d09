import crypto from 'node:crypto';
import type { Queryable } from '../pool';
import { qualified, ident, SCHEMA } from '../identifiers';

/** The row triggers steps keep two shapes of a table in sync with: names, creation, removal. */

/**
 * Name of the trigger (on the table) and its function (in the stagefill
 * schema) for one step. Postgres fires BEFORE triggers in name order, so
 * `rank` puts two-way syncs (1) before computed columns (2) — an `up` may read
 * a column another step keeps in sync — and `index` keeps the spec's order.
 */
export function stepTriggerName(rolloutId: number, table: string, stepId: string, rank: 1 | 2, index: number): string {
  const h = crypto.createHash('sha256').update(`${rolloutId}\0${table}\0${stepId}`).digest('hex').slice(0, 8);
  const slug = stepId.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 30);
  return `stagefill_${rank}${String(index).padStart(3, '0')}_${slug}_${h}`;
}

/** `expr` evaluated over the row being written: bare column names resolve against NEW's columns. */
export function overRow(expr: string): string {
  return `(SELECT (${expr}) FROM (SELECT (NEW).*) AS _r)`;
}

/** A dollar-quoted body whose tag cannot occur inside it. */
function dollarQuote(body: string): string {
  let tag = `sf_${crypto.createHash('sha256').update(body).digest('hex').slice(0, 8)}`;
  while (body.includes(`$${tag}$`)) tag += 'x';
  return `$${tag}$${body}$${tag}$`;
}

export async function createRowTrigger(db: Queryable, table: string, name: string, body: string): Promise<void> {
  const fn = `${ident(SCHEMA)}.${ident(name)}`;
  await db.query(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS ${dollarQuote(body)}`);
  await db.query(`CREATE TRIGGER ${ident(name)} BEFORE INSERT OR UPDATE ON ${qualified(table)} FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
}

export async function dropStepTrigger(db: Queryable, table: string, name: string): Promise<void> {
  await db.query(`DROP TRIGGER IF EXISTS ${ident(name)} ON ${qualified(table)}`);
  await db.query(`DROP FUNCTION IF EXISTS ${ident(SCHEMA)}.${ident(name)}()`);
}
