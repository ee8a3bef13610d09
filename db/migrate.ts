import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';
import { withTransaction } from './pool';

/** Migrations are db/migrations/NNN_name.sql; found beside this file or, compiled, in the source tree. */
function migrationsDir(): string {
  for (const dir of [path.join(__dirname, 'migrations'), path.join(__dirname, '..', '..', 'db', 'migrations')]) {
    if (fs.existsSync(dir)) return dir;
  }
  throw new Error(`stagefill's migrations folder is missing (looked beside ${__dirname})`);
}

// Any constant works; it only has to be the same for every stagefill process.
const MIGRATION_LOCK = 0x5a6e_f111;

/** Applies pending migrations once, whichever of many workers gets here first. */
export async function migrate(pool: Pool): Promise<string[]> {
  const dir = migrationsDir();
  const files = fs
    .readdirSync(dir)
    .filter((f) => /^\d{3}_.+\.sql$/.test(f))
    .sort();
  return withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE SCHEMA IF NOT EXISTS stagefill');
    await client.query(
      'CREATE TABLE IF NOT EXISTS stagefill.migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const { rows } = await client.query<{ name: string }>('SELECT name FROM stagefill.migrations');
    const done = new Set(rows.map((r) => r.name));
    const applied: string[] = [];
    for (const file of files) {
      if (done.has(file)) continue;
      await client.query(fs.readFileSync(path.join(dir, file), 'utf8'));
      await client.query('INSERT INTO stagefill.migrations (name) VALUES ($1)', [file]);
      applied.push(file);
    }
    return applied;
  });
}
