import { escapeLiteral } from 'pg';
import type { Queryable } from '../pool';
import { ident, qualified } from '../identifiers';
import type { DuplicationStatement } from '../../core/rollout/alter-column/duplication-types';
import { parseTable } from '../../core/common/table-name';

/**
 * The statements of a duplication plan (core/rollout/alter-column/duplicate.ts): one function per
 * action, identifiers quoted here. The definitions it splices (a CHECK's
 * expression, an index's `USING ...` tail, a foreign key's actions, a
 * default) come from the catalog's own printing (pg_get_constraintdef,
 * pg_get_indexdef, pg_get_expr) with the column reference rewritten, never
 * from free user text. The statements' shape, `DuplicationStatement`, is
 * core/rollout/alter-column/duplication-types.ts's.
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
      // continue where the old column's sequence stands, with its options; it goes with the old column
      await db.query(
        `ALTER TABLE ${t} ALTER COLUMN ${ident(a.column)} ADD GENERATED ${a.always ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY (${await identityOptions(db, a.fromSequence)})`,
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

/** The bounds Postgres gives a sequence of each type when none is named. */
const BIGINT_BOUNDS: [bigint, bigint] = [-9223372036854775808n, 9223372036854775807n];
const TYPE_BOUNDS = new Map<string, [bigint, bigint]>([
  ['smallint', [-32768n, 32767n]],
  ['integer', [-2147483648n, 2147483647n]],
  ['bigint', BIGINT_BOUNDS],
]);

/**
 * The identity options that carry the old sequence over: START WITH where it
 * stands (its next value), INCREMENT, CACHE, CYCLE, and MINVALUE/MAXVALUE when
 * they are not the defaults of its type (so a key widened to bigint gets
 * bigint's range, not the old type's).
 */
async function identityOptions(db: Queryable, sequence: string): Promise<string> {
  const name = sequenceName(sequence);
  const { rows } = await db.query<{ next: string; inc: string; min: string; max: string; cache: string; cycle: boolean; type: string }>(
    `SELECT (CASE WHEN s.is_called THEN s.last_value + p.seqincrement ELSE s.last_value END)::text AS next,
            p.seqincrement::text AS inc, p.seqmin::text AS min, p.seqmax::text AS max, p.seqcache::text AS cache, p.seqcycle AS cycle,
            format_type(p.seqtypid, NULL) AS type
       FROM ${name} s, pg_sequence p WHERE p.seqrelid = $1::regclass`,
    [name],
  );
  const r = rows[0];
  if (!r) return 'START WITH 1';
  for (const v of [r.next, r.inc, r.min, r.max, r.cache]) if (!/^-?\d+$/.test(v)) throw new Error(`identity: ${sequence} gave ${v}`);
  const [typeMin, typeMax] = TYPE_BOUNDS.get(r.type) ?? BIGINT_BOUNDS;
  const ascending = BigInt(r.inc) > 0n;
  const defaultMin = ascending ? 1n : typeMin;
  const defaultMax = ascending ? typeMax : -1n;
  const options = [`START WITH ${r.next}`, `INCREMENT BY ${r.inc}`];
  if (BigInt(r.min) !== defaultMin) options.push(`MINVALUE ${r.min}`);
  if (BigInt(r.max) !== defaultMax) options.push(`MAXVALUE ${r.max}`);
  if (r.cache !== '1') options.push(`CACHE ${r.cache}`);
  if (r.cycle) options.push('CYCLE');
  return options.join(' ');
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
