import { Pool, PoolClient, PoolConfig } from 'pg';

export type Queryable = Pick<PoolClient, 'query'>;

export interface PoolOptions {
  url: string;
  max?: number;
  applicationName?: string;
  /** Postgres sslmode semantics are read from the URL by pg (`?sslmode=require`). */
  ssl?: PoolConfig['ssl'];
}

export function createPool(opts: PoolOptions): Pool {
  const pool = new Pool({
    connectionString: opts.url,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? 'stagefill',
    ssl: opts.ssl,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client whose server went away (restart, pg_terminate_backend) emits
  // 'error'; the pool drops it and the next checkout reconnects.
  pool.on('error', () => {});
  return pool;
}

/**
 * The one way stagefill writes something that must happen exactly once: the
 * callback's statements and its checkpoint commit together or not at all.
 */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  // A checked-out client whose server goes away (pg_terminate_backend, a restart) emits 'error';
  // unheard, that event would crash the whole worker. The statement in flight rejects anyway.
  const onLost = () => {
    broken = true;
  };
  client.on('error', onLost);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true; // the connection itself failed: do not hand it out again
    }
    throw err;
  } finally {
    client.removeListener('error', onLost);
    client.release(broken);
  }
}

/** Fails fast with the driver's message when the database cannot be reached. */
export async function ping(pool: Pool): Promise<void> {
  await pool.query('SELECT 1');
}
