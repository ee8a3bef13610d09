import { Client as PgClient } from 'pg';
import { Connection } from '@temporalio/client';

/** An address inherited from the environment that does not answer: `stagefill dev` says which and exits 1. */
export class InheritedAddressError extends Error {}

const HINT =
  'unset it to let `stagefill dev` start its own (a shell that once ran `source .stagefill/dev.env` keeps the addresses of a stack that may be gone: `unset TEMPORAL_ADDRESS TEMPORAL_NAMESPACE TEMPORAL_UI DATABASE_URL`), or start that server';

/** The URL with its password replaced, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}

export async function checkInheritedPostgres(url: string): Promise<void> {
  const client = new PgClient({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    throw new InheritedAddressError(
      `DATABASE_URL=${redactUrl(url)} (from the environment) does not answer: ${(err as Error).message}; ${HINT}`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

export async function checkInheritedTemporal(address: string, namespace: string): Promise<void> {
  let conn: Connection | undefined;
  try {
    conn = await Connection.connect({ address, connectTimeout: 3000 });
    await conn.workflowService.describeNamespace({ namespace });
  } catch (err) {
    throw new InheritedAddressError(
      `TEMPORAL_ADDRESS=${address} (from the environment) does not answer: ${(err as Error).message.split('\n')[0]}; ${HINT}`,
    );
  } finally {
    await conn?.close().catch(() => {});
  }
}
