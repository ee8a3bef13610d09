import type { Queryable } from '../pool';
import { own } from '../identifiers';

/**
 * The read-path flag of a table (stagefill's read_paths table): which version
 * view its readers get, and what share of them, while an expose step moves
 * them over.
 */

export interface ReadPathRow {
  table_name: string;
  version: number;
  percent: number;
  previous_version: number | null;
  workflow_id: string | null;
}

export async function lockReadPath(db: Queryable, table: string): Promise<ReadPathRow | undefined> {
  const { rows } = await db.query<ReadPathRow>(
    `SELECT table_name, version, percent, previous_version, workflow_id FROM ${own('read_paths')} WHERE table_name = $1 FOR UPDATE`,
    [table],
  );
  return rows[0];
}

export async function getReadPath(db: Queryable, table: string): Promise<ReadPathRow | undefined> {
  const { rows } = await db.query<ReadPathRow>(
    `SELECT table_name, version, percent, previous_version, workflow_id FROM ${own('read_paths')} WHERE table_name = $1`,
    [table],
  );
  return rows[0];
}

export async function setReadPath(db: Queryable, r: ReadPathRow): Promise<void> {
  await db.query(
    `INSERT INTO ${own('read_paths')} (table_name, version, percent, previous_version, workflow_id) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (table_name) DO UPDATE
       SET version = EXCLUDED.version, percent = EXCLUDED.percent, previous_version = EXCLUDED.previous_version,
           workflow_id = EXCLUDED.workflow_id, updated_at = now()`,
    [r.table_name, r.version, r.percent, r.previous_version, r.workflow_id],
  );
}

export async function deleteReadPath(db: Queryable, table: string): Promise<void> {
  await db.query(`DELETE FROM ${own('read_paths')} WHERE table_name = $1`, [table]);
}
