import type { Queryable } from '../pool';
import { parseTable } from '../../core/common/table-name';

/**
 * The shape of one table as the catalog describes it, in a canonical form:
 * two snapshots are equal exactly when the schema a reader or writer sees is
 * the same. Taken before a rollout and after its rollback, then compared.
 */
export interface CatalogSnapshot {
  table: string;
  exists: boolean;
  /** In column order; attnum itself is left out (a dropped and re-added column keeps its place in this list). */
  columns: { name: string; type: string; notNull: boolean; default: string | null; identity: string | null; generated: string | null }[];
  /** pg_get_constraintdef prints NOT VALID for a constraint not yet validated. */
  constraints: { name: string; def: string }[];
  /** pg_get_indexdef, with " INVALID" appended for an index a failed concurrent build left (pg_index.indisvalid false). */
  indexes: { name: string; def: string }[];
  /** Comments on the table ("table"), its columns ("column x"), indexes ("index i") and constraints ("constraint c"); absent in snapshots taken before comments were compared. */
  comments?: { name: string; def: string }[];
  triggers: { name: string; def: string; enabled: string }[];
  /** Views anywhere that read the table, with their definitions. */
  views: { name: string; def: string }[];
  /** The per-version view schemas of the table that exist. */
  viewSchemas: string[];
}

async function tableOid(db: Queryable, table: string): Promise<number | undefined> {
  const t = parseTable(table);
  const { rows } = await db.query<{ oid: number }>(
    `SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
    [t.schema, t.name],
  );
  return rows[0]?.oid;
}

/**
 * `viewSchemaPattern` is a POSIX regex matching the table's view schema names
 * (the caller owns the naming rule); it is bound as a value like any other.
 */
export async function snapshotCatalog(db: Queryable, table: string, viewSchemaPattern: string): Promise<CatalogSnapshot> {
  const { rows: schemas } = await db.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname ~ $1 ORDER BY nspname`, [
    viewSchemaPattern,
  ]);
  const viewSchemas = schemas.map((s) => s.nspname);
  const oid = await tableOid(db, table);
  if (oid === undefined)
    return { table, exists: false, columns: [], constraints: [], indexes: [], comments: [], triggers: [], views: [], viewSchemas };

  const { rows: columns } = await db.query<CatalogSnapshot['columns'][number]>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull",
            pg_get_expr(d.adbin, d.adrelid) AS default,
            NULLIF(a.attidentity, '') AS identity, NULLIF(a.attgenerated, '') AS generated
       FROM pg_attribute a
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [oid],
  );
  const { rows: constraints } = await db.query<{ name: string; def: string }>(
    `SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1 ORDER BY conname, def`,
    [oid],
  );
  const { rows: indexes } = await db.query<{ name: string; def: string }>(
    `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END AS def
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = $1 ORDER BY c.relname`,
    [oid],
  );
  const { rows: comments } = await db.query<{ name: string; def: string }>(
    `SELECT name, def FROM (
       SELECT 'table' AS name, obj_description($1::oid, 'pg_class') AS def
       UNION ALL SELECT format('column %s', a.attname), col_description(a.attrelid, a.attnum)
         FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
       UNION ALL SELECT format('index %s', c.relname), obj_description(i.indexrelid, 'pg_class')
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1
       UNION ALL SELECT format('constraint %s', k.conname), obj_description(k.oid, 'pg_constraint')
         FROM pg_constraint k WHERE k.conrelid = $1
     ) x WHERE def IS NOT NULL ORDER BY name`,
    [oid],
  );
  const { rows: triggers } = await db.query<{ name: string; def: string; enabled: string }>(
    `SELECT tgname AS name, pg_get_triggerdef(oid) AS def, tgenabled::text AS enabled
       FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal ORDER BY tgname`,
    [oid],
  );
  // A view's rewrite rule depends on every table it reads.
  const { rows: views } = await db.query<{ name: string; def: string }>(
    `SELECT DISTINCT format('%I.%I', vn.nspname, v.relname) AS name, pg_get_viewdef(v.oid) AS def
       FROM pg_depend d
       JOIN pg_rewrite r ON r.oid = d.objid
       JOIN pg_class v ON v.oid = r.ev_class
       JOIN pg_namespace vn ON vn.oid = v.relnamespace
      WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
        AND d.refobjid = $1 AND v.oid <> $1
      ORDER BY name`,
    [oid],
  );
  return { table, exists: true, columns, constraints, indexes, comments, triggers, views, viewSchemas };
}

/** Readable lines for every difference from `before` to `after`; empty when they are equal. */
export function compareCatalogs(before: CatalogSnapshot, after: CatalogSnapshot): string[] {
  const diff: string[] = [];
  const t = before.table;
  if (before.exists !== after.exists) {
    diff.push(after.exists ? `${t}: table created` : `${t}: table dropped`);
    return diff;
  }
  const describeColumn = (c: CatalogSnapshot['columns'][number]) =>
    `${c.type}${c.notNull ? ' NOT NULL' : ''}${c.default !== null ? ` DEFAULT ${c.default}` : ''}${c.identity ? ` IDENTITY(${c.identity})` : ''}${c.generated ? ` GENERATED(${c.generated})` : ''}`;
  const beforeCols = new Map(before.columns.map((c) => [c.name, c]));
  const afterCols = new Map(after.columns.map((c) => [c.name, c]));
  for (const [name, c] of beforeCols) {
    const a = afterCols.get(name);
    if (!a) diff.push(`${t}: column ${name} removed (was ${describeColumn(c)})`);
    else if (describeColumn(a) !== describeColumn(c))
      diff.push(`${t}: column ${name} changed: ${describeColumn(c)} -> ${describeColumn(a)}`);
  }
  for (const [name, c] of afterCols) if (!beforeCols.has(name)) diff.push(`${t}: column ${name} added (${describeColumn(c)})`);
  const beforeOrder = before.columns.map((c) => c.name).filter((n) => afterCols.has(n));
  const afterOrder = after.columns.map((c) => c.name).filter((n) => beforeCols.has(n));
  if (beforeOrder.join(',') !== afterOrder.join(','))
    diff.push(`${t}: column order changed: ${beforeOrder.join(', ')} -> ${afterOrder.join(', ')}`);

  const named = <T extends { name: string; def: string }>(what: string, b: T[], a: T[], show: (x: T) => string = (x) => x.def) => {
    const bm = new Map(b.map((x) => [x.name, x]));
    const am = new Map(a.map((x) => [x.name, x]));
    for (const [name, x] of bm) {
      const y = am.get(name);
      if (!y) diff.push(`${t}: ${what} ${name} removed (was ${show(x)})`);
      else if (show(x) !== show(y)) diff.push(`${t}: ${what} ${name} changed: ${show(x)} -> ${show(y)}`);
    }
    for (const [name, y] of am) if (!bm.has(name)) diff.push(`${t}: ${what} ${name} added (${show(y)})`);
  };
  named('constraint', before.constraints, after.constraints);
  named('index', before.indexes, after.indexes);
  // a snapshot from before comments were taken has none to compare
  if (before.comments) named('comment on', before.comments, after.comments ?? []);
  named('trigger', before.triggers, after.triggers, (x) => `${x.def}${x.enabled === 'O' ? '' : ` [enabled=${x.enabled}]`}`);
  named('view', before.views, after.views);
  for (const s of before.viewSchemas) if (!after.viewSchemas.includes(s)) diff.push(`${t}: view schema ${s} removed`);
  for (const s of after.viewSchemas) if (!before.viewSchemas.includes(s)) diff.push(`${t}: view schema ${s} added`);
  return diff;
}
