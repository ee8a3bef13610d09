import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import type { Service } from './process';
import { startService, sleep, tail } from './process';
import { freePort } from './ports';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes';

export interface TemporalDevServer {
  address: string;
  namespace: string;
  uiUrl?: string;
  cli: string;
  service: Service;
  stop(): Promise<void>;
}

export interface TemporalDevOptions {
  cli: string;
  /** SQLite file that keeps history across restarts; in-memory when absent. */
  dbFile?: string;
  port?: number;
  uiPort?: number;
  headless?: boolean;
  namespace?: string;
  logFile: string;
}

/** `temporal server start-dev` on free ports, with stagefill's search attributes registered. */
export async function startTemporalDevServer(opts: TemporalDevOptions): Promise<TemporalDevServer> {
  const port = opts.port ?? (await freePort());
  const uiPort = opts.headless ? undefined : (opts.uiPort ?? (await freePort()));
  const namespace = opts.namespace ?? 'default';
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--log-level', 'warn'];
  if (uiPort) args.push('--ui-port', String(uiPort), '--ui-disable-news-fetch');
  else args.push('--headless');
  if (opts.dbFile) {
    fs.mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  if (namespace !== 'default') args.push('--namespace', namespace);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);

  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const service = startService({ name: 'temporal', command: opts.cli, args, logFile: opts.logFile });
  const address = `127.0.0.1:${port}`;
  await waitForTemporal(address, namespace, service, opts.logFile);
  return {
    address,
    namespace,
    uiUrl: uiPort ? `http://127.0.0.1:${uiPort}` : undefined,
    cli: opts.cli,
    service,
    stop: () => service.stop(),
  };
}

async function waitForTemporal(address: string, namespace: string, service: Service, logFile: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  let exitCode: number | null | undefined;
  void service.exited.then((c) => (exitCode = c ?? -1));
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`temporal dev server exited (${exitCode}):\n${tail(logFile)}`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await conn.workflowService.describeNamespace({ namespace });
        return;
      } finally {
        await conn.close();
      }
    } catch {
      await sleep(250);
    }
  }
  await service.stop();
  throw new Error(`temporal dev server did not become ready on ${address} within 60s:\n${tail(logFile)}`);
}
