import type { Queryable } from '../../db/pool';
import { ident, qualified } from '../../db/identifiers';

export async function renameConstraint(db: Queryable, table: string, from: string, to: string): Promise<void> {
  await db.query(`ALTER TABLE ${qualified(table)} RENAME CONSTRAINT ${ident(from)} TO ${ident(to)}`);
}
