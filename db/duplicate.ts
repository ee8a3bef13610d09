import { escapeLiteral } from 'pg';
import { Queryable } from './pool';
import { ident, qualified, parseTable } from './identifiers';
import type { DuplicationStatement } from '../plan/duplication-types';

/**
 * The statements of a duplication plan (plan/duplicate.ts): one function per
 * action, identifiers quoted here. The definitions it splices (a CHECK's
 * expression, an index's `USING ...` tail, a foreign key's actions, a
 * default) come from the catalog's own printing (pg_get_constraintdef,
 * pg_get_indexdef, pg_get_expr) with the column reference rewritten, never
 * from free user text. The statements' shape, `DuplicationStatement`, is
 * plan/duplication-types.ts's.
 */

const PRIVILEGES = new Set(['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']);
const SEQUENCE_TYPES = new Set(['smallint', 'integer', 'bigint']);

/** Runs one action. createIndex runs CONCURRENTLY, so it must be called outside a transaction (see `buildIndexConcurrently`). */
export async function runDuplicationStatement(db: Queryable, a: DuplicationStatement): Promise<void> {
  const t = 'table' in a ? qualified(a.table) : '';
  switch (a.op) {
    case 'addCheck':
      await db.query(`ALTER TABLE ${t} ADD CONSTRAINT ${ident(a.name)} CHECK (${a.expression}) NOT VALID`);
      return;
    case 'addNotNullCheck':
      await db.query(`ALTER TABLE ${t} ADD CONSTRAINT ${ident(a.name)} CHECK (${ident(a.column)} IS NOT NULL) NOT VALID`);
      return;
    case 'validate':
      await db.query(`ALTER TABLE ${t} VALIDATE CONSTRAINT ${ident(a.name)}`);
      return;
    case 'addForeignKey':
      await db.query(
        `ALTER TABLE ${t} ADD CONSTRAINT ${ident(a.name)} FOREIGN KEY (${a.columns.map(ident).join(', ')}) REFERENCES ${qualified(a.refTable)} (${a.refColumns.map(ident).join(', ')}) ${a.tail} NOT VALID`,
      );
      return;
    case 'dropConstraint':
    case 'dropHelperCheck':
      await db.query(`ALTER TABLE ${t} DROP CONSTRAINT IF EXISTS ${ident(a.name)}`);
      return;
    case 'createIndex':
      await buildIndexConcurrently(db, a);
      return;
    case 'checkDefault':
      // planned, not run: a nextval() default must not advance its sequence
      await db.query(`EXPLAIN (COSTS OFF) SELECT (${a.expression})::${a.type}`);
      return;
    case 'setDefault':
      await db.query(`ALTER TABLE ${t} ALTER COLUMN ${ident(a.column)} SET DEFAULT ${a.expression}`);
      return;
    case 'comment':
      await db.query(`COMMENT ON COLUMN ${t}.${ident(a.column)} IS ${escapeLiteral(a.text)}`);
      return;
    case 'grant': {
      if (!PRIVILEGES.has(a.privilege)) throw new Error(`grant: ${a.privilege} is not a column privilege`);
      const grantee = a.grantee === 'PUBLIC' ? 'PUBLIC' : ident(a.grantee);
      await db.query(`GRANT ${a.privilege} (${ident(a.column)}) ON ${t} TO ${grantee}${a.isGrantable ? ' WITH GRANT OPTION' : ''}`);
      return;
    }
    case 'ownSequence':
      if (a.asType !== undefined) {
        if (!SEQUENCE_TYPES.has(a.asType)) throw new Error(`ownSequence: ${a.asType} is not a sequence type`);
        await db.query(`ALTER SEQUENCE ${sequenceName(a.sequence)} AS ${a.asType}`);
      }
      await db.query(`ALTER SEQUENCE ${sequenceName(a.sequence)} OWNED BY ${t}.${ident(a.column)}`);
      return;
    case 'renameIdentitySequence': {
      const { rows } = await db.query<{ s: string | null }>(`SELECT pg_get_serial_sequence($1, $2) AS s`, [t, a.column]);
      const to = (a.to.match(/"(?:[^"]|"")*"|[^.]+/g) ?? []).pop() ?? '';
      const name = to.startsWith('"') ? to.slice(1, -1).replace(/""/g, '"') : to;
      if (rows[0]?.s && name && rows[0].s !== a.to) await db.query(`ALTER SEQUENCE ${sequenceName(rows[0].s)} RENAME TO ${ident(name)}`);
      return;
    }
    case 'addIdentity': {
      // continue where the old column's sequence stands; it goes with the old column
      const { rows } = await db.query<{ next: string }>(
        `SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END::text AS next FROM ${sequenceName(a.fromSequence)}`,
      );
      const start = rows[0]?.next ?? '1';
      if (!/^-?\d+$/.test(start)) throw new Error(`identity: ${a.fromSequence} gave ${start}`);
      await db.query(
        `ALTER TABLE ${t} ALTER COLUMN ${ident(a.column)} ADD GENERATED ${a.always ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY (START WITH ${start})`,
      );
      return;
    }
    case 'setNotNull':
      await db.query(`ALTER TABLE ${t} ALTER COLUMN ${ident(a.column)} SET NOT NULL`);
      return;
    case 'renameConstraint':
      await db.query(`ALTER TABLE ${t} RENAME CONSTRAINT ${ident(a.from)} TO ${ident(a.to)}`);
      return;
    case 'renameIndex':
      await db.query(`ALTER INDEX ${ident(parseTable(a.table).schema)}.${ident(a.from)} RENAME TO ${ident(a.to)}`);
      return;
    case 'attachUnique':
      await db.query(
        `ALTER TABLE ${t} ADD CONSTRAINT ${ident(a.name)} ${a.isPrimaryKey ? 'PRIMARY KEY' : 'UNIQUE'} USING INDEX ${ident(a.index)}${a.deferrable ? ` DEFERRABLE INITIALLY ${a.deferred ? 'DEFERRED' : 'IMMEDIATE'}` : ''}`,
      );
      return;
  }
}

/** `schema.name` as pg_get_serial_sequence prints it (quoted where needed), split and quoted again. */
function sequenceName(printed: string): string {
  const parts = printed.match(/"(?:[^"]|"")*"|[^.]+/g) ?? [];
  return parts.map((p) => (p.startsWith('"') ? p : ident(p))).join('.');
}

/**
 * CREATE [UNIQUE] INDEX CONCURRENTLY, outside any transaction. A valid index
 * of that name is this build done already; an INVALID one is the leftover of
 * a failed or interrupted build and is dropped first, so a retry never
 * leaves two indexes or a broken one.
 */
export async function buildIndexConcurrently(
  db: Queryable,
  a: { table: string; name: string; isUnique: boolean; tail: string },
): Promise<'built' | 'existed'> {
  const schema = parseTable(a.table).schema;
  const { rows } = await db.query<{ valid: boolean }>(
    `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
    [schema, a.name],
  );
  if (rows[0]?.valid) return 'existed';
  if (rows[0]) await db.query(`DROP INDEX CONCURRENTLY IF EXISTS ${ident(schema)}.${ident(a.name)}`);
  await db.query(`CREATE ${a.isUnique ? 'UNIQUE ' : ''}INDEX CONCURRENTLY ${ident(a.name)} ON ${qualified(a.table)} ${a.tail}`);
  return 'built';
}
