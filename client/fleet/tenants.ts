import fs from 'node:fs';
import YAML from 'yaml';
import { createPool } from '../../db/pool';
import { createDatabaseIfMissing, runSqlText, writeTenantCatalog } from '../../db/fleet/tenants';
import { tableName } from '../../core/common/fields';
import { TARGET_NAME } from '../../core/fleet/ids';
import { UsageError } from '../errors';

export interface TenantsOptions {
  databaseUrl?: string;
  count: number;
  prefix: string;
  /** How many of the first ones are tagged env: staging (the others env: prod). */
  staging: number;
  sql?: string;
  out: string;
  /** A table in DATABASE_URL's database to list the tenants in (name, active): a catalog for `targets.query`. */
  catalog?: string;
}

export interface MadeTenant {
  name: string;
  /** The URL, as written into the targets file. */
  url: string;
  tags: Record<string, string>;
  created: boolean;
}

/**
 * `stagefill tenants`: a few tenant databases on the server of DATABASE_URL
 * (the dev stack's, say), each with the SQL file run in it, and a targets
 * file naming them, to try a fleet on. Run again, it creates only what is
 * missing and runs the file again (write it to be re-runnable).
 */
export async function makeTenants(opts: TenantsOptions): Promise<MadeTenant[]> {
  if (!opts.databaseUrl)
    throw new UsageError('--database-url: not set; pass it or set DATABASE_URL (`source .stagefill/dev.env` after `stagefill dev`)');
  if (!Number.isInteger(opts.count) || opts.count < 1 || opts.count > 1000)
    throw new UsageError(`--count: expected 1..1000, got ${opts.count}`);
  if (!TARGET_NAME.test(`${opts.prefix}${opts.count}`) || !/^[a-z_][a-z0-9_]*$/.test(opts.prefix))
    throw new UsageError(`--prefix: "${opts.prefix}" must be lower-case letters, digits and _ (it names databases and targets)`);
  if (opts.catalog !== undefined && !tableName.safeParse(opts.catalog).success)
    throw new UsageError(`--catalog: "${opts.catalog}" is not a table name; write schema.table or table, e.g. public.tenants`);
  const sql = opts.sql === undefined ? undefined : readSql(opts.sql);
  let base: URL;
  try {
    base = new URL(opts.databaseUrl);
  } catch {
    throw new UsageError('--database-url: not a URL; expected postgres://user@host:port/database');
  }
  const admin = createPool({ url: opts.databaseUrl, max: 1, applicationName: 'stagefill-tenants' });
  const made: MadeTenant[] = [];
  try {
    for (let i = 1; i <= opts.count; i++) {
      const name = `${opts.prefix}${i}`;
      const created = await createDatabaseIfMissing(admin, name);
      const u = new URL(base.toString());
      u.pathname = `/${name}`;
      if (sql !== undefined) {
        const db = createPool({ url: u.toString(), max: 1, applicationName: 'stagefill-tenants' });
        try {
          await runSqlText(db, sql);
        } catch (err) {
          throw new UsageError(`--sql: ${opts.sql} failed in ${name}: ${(err as Error).message}`);
        } finally {
          await db.end().catch(() => {});
        }
      }
      made.push({ name, url: u.toString(), tags: { env: i <= opts.staging ? 'staging' : 'prod' }, created });
    }
    if (opts.catalog !== undefined)
      await writeTenantCatalog(
        admin,
        opts.catalog,
        made.map((t) => t.name),
      );
  } finally {
    await admin.end().catch(() => {});
  }
  fs.writeFileSync(
    opts.out,
    `# written by \`stagefill tenants\`: the targets file the fleet's workers read (STAGEFILL_TARGETS)\n` +
      YAML.stringify(Object.fromEntries(made.map((t) => [t.name, { url: t.url, tags: t.tags }]))),
  );
  return made;
}

function readSql(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--sql: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
