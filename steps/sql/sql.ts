import type { Queryable } from '../../db/pool';

/** The step's `check`: its one value read as a boolean (true, 't', 'true', 'yes', 'on' or a number other than 0). */
export async function userCheck(db: Queryable, check: string): Promise<boolean> {
  const { rows } = await db.query(check);
  const value: unknown = rows[0] ? Object.values(rows[0] as Record<string, unknown>)[0] : null;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'string') return /^(t|true|yes|on|[1-9]\d*)$/i.test(value.trim());
  return false;
}
