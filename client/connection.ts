import fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import type { WorkerConfig } from '../worker/config';
import { loadWorkerConfig } from '../worker/config';
import { ConnectionError } from './errors';

export interface ConnectOptions {
  address?: string;
  namespace?: string;
  taskQueue?: string;
  /** mTLS client certificate and key paths. */
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}

export interface StagefillConnection {
  client: Client;
  namespace: string;
  taskQueue: string;
  address: string;
  close(): Promise<void>;
}

/** Connects with the same variables as the worker (TEMPORAL_ADDRESS, …), overridden by explicit options. */
export async function connect(opts: ConnectOptions = {}): Promise<StagefillConnection> {
  const env = { ...process.env, DATABASE_URL: process.env.DATABASE_URL || 'postgres://unused@localhost/unused' };
  const config: WorkerConfig = loadWorkerConfig(env, {
    TEMPORAL_ADDRESS: opts.address,
    TEMPORAL_NAMESPACE: opts.namespace,
    STAGEFILL_TASK_QUEUE: opts.taskQueue,
    TEMPORAL_TLS_CERT: opts.tlsCert,
    TEMPORAL_TLS_KEY: opts.tlsKey,
    TEMPORAL_TLS_CA: opts.tlsCa,
  });
  // mTLS with a client pair; TLS against a private CA with only the CA; plain otherwise (the dev server)
  const isTls = Boolean((config.TEMPORAL_TLS_CERT && config.TEMPORAL_TLS_KEY) || config.TEMPORAL_TLS_CA);
  const tls = isTls
    ? {
        clientCertPair:
          config.TEMPORAL_TLS_CERT && config.TEMPORAL_TLS_KEY
            ? { crt: fs.readFileSync(config.TEMPORAL_TLS_CERT), key: fs.readFileSync(config.TEMPORAL_TLS_KEY) }
            : undefined,
        serverRootCACertificate: config.TEMPORAL_TLS_CA ? fs.readFileSync(config.TEMPORAL_TLS_CA) : undefined,
        serverNameOverride: config.TEMPORAL_TLS_SERVER_NAME,
      }
    : undefined;
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS, tls, connectTimeout: 5000 });
  } catch (err) {
    throw new ConnectionError(`cannot reach Temporal at ${config.TEMPORAL_ADDRESS}: ${(err as Error).message.split('\n')[0]}`);
  }
  return {
    client: new Client({ connection, namespace: config.TEMPORAL_NAMESPACE }),
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.STAGEFILL_TASK_QUEUE,
    address: config.TEMPORAL_ADDRESS,
    close: () => connection.close(),
  };
}
