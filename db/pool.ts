import crypto from 'node:crypto';
import type { PoolClient, PoolConfig, QueryConfig } from 'pg';
import { Pool } from 'pg';
import { oneRow } from './rows';

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

/** Sessions whose connection failed mid-use: released as broken, never handed out again. */
const brokenSessions = new WeakSet<PoolClient>();

/**
 * The one way stagefill writes something that must happen exactly once: the
 * callback's statements and its checkpoint commit together or not at all.
 */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  return withSession(pool, (client) => inTransaction(client, fn));
}

/** withTransaction on a session the caller already holds (a backfill lane's). */
export async function inTransaction<T>(client: PoolClient, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      brokenSessions.add(client); // the connection itself failed: do not hand it out again
    }
    throw err;
  }
}

/** One pooled connection for the callback's statements; one that failed is closed, not pooled again. */
export async function withSession<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const session = await openSession(pool);
  try {
    return await fn(session.client);
  } finally {
    await session.close();
  }
}

export interface Session {
  client: PoolClient;
  /**
   * Back to the pool (after `reset`), or closed if the connection failed, the
   * reset said so, or the holder does (`isBroken`: its last statement failed
   * in a way that may have left the session in doubt). Never throws.
   */
  close(isBroken?: boolean): Promise<void>;
}

/**
 * withSession for a holder that keeps the connection across awaits of its own
 * (a backfill lane between chunks). `reset` runs before a healthy connection
 * goes back to the pool (to undo session settings); false, or a failure,
 * closes it instead.
 */
export async function openSession(pool: Pool, reset?: (client: PoolClient) => Promise<boolean | void>): Promise<Session> {
  const client = await pool.connect();
  // A checked-out client whose server goes away (pg_terminate_backend, a restart) emits 'error';
  // unheard, that event would crash the whole worker. The statement in flight rejects anyway.
  const onLost = () => brokenSessions.add(client);
  client.on('error', onLost);
  let isClosed = false;
  return {
    client,
    async close(isBroken = false) {
      if (isClosed) return;
      isClosed = true;
      if (isBroken) brokenSessions.add(client);
      if (reset && !brokenSessions.has(client)) {
        const keep = await reset(client).catch(() => false);
        if (keep === false) brokenSessions.add(client);
      }
      client.removeListener('error', onLost);
      client.release(brokenSessions.has(client));
    },
  };
}

/** Named statements a connection holds, by the names `prepared` gave them. */
const preparedOn = new WeakMap<object, Set<string>>();

/**
 * A statement the server parses and plans once per connection rather than on
 * every execution: for the per-chunk statements, planning cost more than a
 * small chunk's work. Named by a hash of the text, so one name is one text.
 */
export function prepared(db: Queryable, text: string, values: unknown[]): QueryConfig {
  const name = statementName(text);
  let names = preparedOn.get(db);
  if (!names) preparedOn.set(db, (names = new Set()));
  names.add(name);
  return { name, text, values };
}

/** Names by text, so the per-chunk path does not hash its statements every time; bounded, as texts come and go with backfills. */
const names = new Map<string, string>();

function statementName(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    if (names.size >= 1000) names.clear();
    name = `stagefill_${crypto.createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    names.set(text, name);
  }
  return name;
}

/** How many named statements `prepared` left on this connection: a long-lived worker retires a connection that holds too many. */
export function preparedCount(db: Queryable): number {
  return preparedOn.get(db)?.size ?? 0;
}

/** Fails fast with the driver's message when the database cannot be reached. */
export async function ping(pool: Pool): Promise<void> {
  await pool.query('SELECT 1');
}

/** What `detectTransactionPooler` saw: undefined when each client keeps its own server session. */
export interface PoolerFinding {
  reason: string;
}

/**
 * Whether the connection string leads to a pooler that hands server sessions
 * around between transactions (PgBouncer pool_mode=transaction or statement,
 * and most managed "pooled" connection strings). stagefill keeps session state
 * (named prepared statements, session settings of a lane, its connection's
 * backend for cancels) and cannot work through one.
 *
 * Probe: client B runs one statement and lets its transaction end; client A
 * then opens a transaction. Directly or through a session-mode pool each client
 * has its own backend for its whole session: A's backend is never B's, and B
 * keeps its backend while A's transaction is open. A transaction pooler hands
 * B's now idle server connection to A (PgBouncer reuses the most recently
 * released one), or gives B another backend while A holds the first.
 */
export async function detectTransactionPooler(pool: Pool): Promise<PoolerFinding | undefined> {
  const pid = async (c: PoolClient) => oneRow(await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'), 'pg_backend_pid()').pid;
  const b = await pool.connect();
  let a: PoolClient | undefined;
  let isBroken = false;
  try {
    const b1 = await pid(b);
    a = await pool.connect();
    try {
      await a.query('BEGIN');
    } catch (err) {
      isBroken = true;
      return { reason: `a transaction block was refused (${(err as Error).message}): a statement-mode pooler` };
    }
    const inA = await pid(a);
    const b2 = await pid(b);
    await a.query('COMMIT');
    if (inA === b1) return { reason: `one client's server session (backend ${b1}) was handed to another client between transactions` };
    if (b2 !== b1) return { reason: `one client's server session changed between two transactions (backend ${b1}, then ${b2})` };
    return undefined;
  } catch (err) {
    isBroken = true;
    throw err;
  } finally {
    a?.release(isBroken);
    b.release(isBroken);
  }
}
