import type { Queryable } from '../pool';
import type {
  ColumnObjects,
  CheckObject,
  UniqueObject,
  ForeignKeyObject,
  IndexObject,
} from '../../core/rollout/alter-column/duplication-types';
import { parseTable } from '../../core/common/table-name';
import { present } from '../../core/common/checked';

/**
 * Every object of one column, read from the catalog: what an alterColumn's
 * new column must get too before contract drops the old one (pgroll's
 * duplicate.go idea). Read-only. The shape (`ColumnObjects`) is defined once
 * in core/rollout/alter-column/duplication-types.ts, which plans the duplication from it.
 */

const tail = (def: string): string => {
  const at = def.search(/\sUSING\s/);
  return at < 0 ? def : def.slice(at + 1);
};

/** What readColumnObjects returns for a column that is not there: `exists: false` and no objects. */
export function noColumnObjects(table: string, column: string): ColumnObjects {
  return {
    table,
    column,
    exists: false,
    type: '',
    notNull: false,
    default: null,
    identity: null,
    sequence: null,
    comment: null,
    privileges: [],
    checks: [],
    uniques: [],
    indexes: [],
    foreignKeys: [],
    referencedBy: [],
    other: [],
    views: [],
  };
}

/** Every object of `table`.`column`; `exists: false` (and nothing else) when there is no such column. */
export async function readColumnObjects(
  db: Queryable,
  table: string,
  column: string,
  versionSchemaPattern?: string,
): Promise<ColumnObjects> {
  // size: one catalog read of a column: a statement per kind of object and the mapping of its rows, in the order ColumnObjects lists them
  const t = parseTable(table);
  const canonical = `${t.schema}.${t.name}`;
  const empty = noColumnObjects(canonical, column);
  const { rows: cols } = await db.query<{
    relid: number;
    attnum: number;
    type: string;
    not_null: boolean;
    default: string | null;
    identity: 'a' | 'd' | null;
    comment: string | null;
    sequence: string | null;
  }>(
    `SELECT c.oid AS relid, a.attnum, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
            pg_get_expr(d.adbin, d.adrelid) AS default, NULLIF(a.attidentity, '') AS identity,
            col_description(c.oid, a.attnum) AS comment,
            pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) AS sequence
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $3 AND a.attnum > 0 AND NOT a.attisdropped
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE n.nspname = $1 AND c.relname = $2`,
    [t.schema, t.name, column],
  );
  const col = cols[0];
  if (!col) return empty;
  const { relid, attnum } = col;

  const { rows: privileges } = await db.query<ColumnObjects['privileges'][number]>(
    `SELECT CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END AS grantee, x.privilege_type AS privilege, x.is_grantable AS "isGrantable"
       FROM pg_attribute a, aclexplode(a.attacl) x
      WHERE a.attrelid = $1 AND a.attnum = $2
      ORDER BY 1, 2`,
    [relid, attnum],
  );

  // constraints of this table over the column, with the names of every column of this table they read
  const { rows: cons } = await db.query<{
    name: string;
    /** pg_constraint.contype: c, u, p, f, x, t */
    kind: string;
    definition: string;
    valid: boolean;
    deferrable: boolean;
    deferred: boolean;
    columns: string[];
    /** The index behind a unique, primary key or exclusion constraint (null for the other kinds). */
    index: string | null;
    index_def: string | null;
    ref_table: string | null;
    ref_columns: string[];
  }>(
    `SELECT k.conname AS name, k.contype AS kind, pg_get_constraintdef(k.oid) AS definition, k.convalidated AS valid,
            k.condeferrable AS deferrable, k.condeferred AS deferred,
            ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, o) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o) AS columns,
            i.relname AS index, CASE WHEN k.conindid <> 0 THEN pg_get_indexdef(k.conindid) END AS index_def,
            fn.nspname || '.' || f.relname AS ref_table,
            ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, o) JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.o) AS ref_columns
       FROM pg_constraint k
       LEFT JOIN pg_class i ON i.oid = k.conindid AND k.contype IN ('u', 'p', 'x')
       LEFT JOIN pg_class f ON f.oid = k.confrelid
       LEFT JOIN pg_namespace fn ON fn.oid = f.relnamespace
      WHERE k.conrelid = $1 AND $2 = ANY (k.conkey) AND k.contype <> 'n'
      ORDER BY k.conname`,
    [relid, attnum],
  );
  const checks: CheckObject[] = [];
  const uniques: UniqueObject[] = [];
  const foreignKeys: ForeignKeyObject[] = [];
  const other: ColumnObjects['other'] = [];
  for (const k of cons) {
    if (k.kind === 'c') checks.push({ name: k.name, definition: k.definition, columns: k.columns, isValid: k.valid });
    else if (k.kind === 'u' || k.kind === 'p') {
      uniques.push({
        name: k.name,
        kind: k.kind === 'p' ? 'primaryKey' : 'unique',
        columns: k.columns,
        index: present(k.index, `the index of constraint ${k.name}`),
        indexTail: tail(present(k.index_def, `the index of constraint ${k.name}`)),
        deferrable: k.deferrable,
        deferred: k.deferred,
        definition: k.definition,
      });
    } else if (k.kind === 'f')
      foreignKeys.push(fk(canonical, { ...k, ref_table: present(k.ref_table, `the table foreign key ${k.name} references`) }));
    else other.push({ name: k.name, kind: k.kind === 'x' ? 'exclusion' : k.kind, definition: k.definition });
  }

  const { rows: incoming } = await db.query<{
    name: string;
    definition: string;
    valid: boolean;
    referencing: string;
    columns: string[];
    column_types: string[];
    ref_columns: string[];
  }>(
    `SELECT k.conname AS name, pg_get_constraintdef(k.oid) AS definition, k.convalidated AS valid,
            rn.nspname || '.' || r.relname AS referencing,
            ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, o) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o) AS columns,
            ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM unnest(k.conkey) WITH ORDINALITY u(n, o) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o) AS column_types,
            ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, o) JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.o) AS ref_columns
       FROM pg_constraint k JOIN pg_class r ON r.oid = k.conrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
      WHERE k.contype = 'f' AND k.confrelid = $1 AND $2 = ANY (k.confkey)
      ORDER BY k.conname`,
    [relid, attnum],
  );
  const referencedBy = incoming.map((k) => ({
    ...fk(k.referencing, { ...k, ref_table: canonical }),
    columnTypes: k.column_types,
  }));

  // indexes over the column (as a key, an INCLUDE column, or in an expression or predicate) that back no constraint
  const { rows: idx } = await db.query<{ name: string; unique: boolean; valid: boolean; definition: string; columns: string[] }>(
    `SELECT c.relname AS name, i.indisunique AS unique, i.indisvalid AS valid, pg_get_indexdef(i.indexrelid) AS definition,
            ARRAY(SELECT DISTINCT a.attname::text FROM pg_attribute a
                   WHERE a.attrelid = i.indrelid AND a.attnum > 0
                     AND (a.attnum = ANY (i.indkey::int2[])
                          OR EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                                        AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid AND d.refobjsubid = a.attnum))
                   ORDER BY 1) AS columns
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = $1
        AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
        AND ($2 = ANY (i.indkey::int2[])
             OR EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                           AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid AND d.refobjsubid = $2))
      ORDER BY c.relname`,
    [relid, attnum],
  );
  const indexes: IndexObject[] = idx.map((r) => ({
    name: r.name,
    isUnique: r.unique,
    isValid: r.valid,
    columns: r.columns,
    indexTail: tail(r.definition),
    definition: r.definition,
  }));

  // views (and materialized views) whose rewrite rule depends on the column
  const { rows: views } = await db.query<{ name: string; schema: string }>(
    `SELECT DISTINCT vn.nspname || '.' || v.relname AS name, vn.nspname AS schema
       FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
      WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND d.refobjsubid = $2 AND v.oid <> $1
      ORDER BY 1`,
    [relid, attnum],
  );
  const pattern = versionSchemaPattern ? new RegExp(versionSchemaPattern) : undefined;

  return {
    ...empty,
    exists: true,
    type: col.type,
    notNull: col.not_null,
    default: col.default,
    identity: col.identity,
    sequence: col.sequence,
    comment: col.comment,
    privileges,
    checks,
    uniques,
    indexes,
    foreignKeys,
    referencedBy,
    other,
    views: views.filter((v) => !pattern?.test(v.schema)).map((v) => v.name),
  };
}

function fk(
  table: string,
  k: { name: string; definition: string; valid: boolean; columns: string[]; ref_table: string; ref_columns: string[] },
): ForeignKeyObject {
  // FOREIGN KEY (a, b) REFERENCES t(x, y) [MATCH FULL] [ON ...] [DEFERRABLE ...] [NOT VALID]
  const m = /\bREFERENCES\s+(?:"(?:[^"]|"")*"|[^\s(])+\s*\((?:"(?:[^"]|"")*"|[^)"])*\)\s*(.*)$/s.exec(k.definition);
  const rest = (m?.[1] ?? '').replace(/\s*NOT VALID\s*$/, '').trim();
  return {
    name: k.name,
    table,
    columns: k.columns,
    refTable: k.ref_table,
    refColumns: k.ref_columns,
    tail: rest,
    definition: k.definition,
    isValid: k.valid,
  };
}
