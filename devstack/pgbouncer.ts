import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import type { Service } from './process';
import { startService, sleep, tail } from './process';
import { findOrInstall } from './apt';
import { freePort } from './ports';
import { runAsUser } from './postgres';

export interface PgBouncer {
  url: string;
  port: number;
  mode: 'session' | 'transaction';
  service: Service;
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  /** The PostgreSQL it pools: host, port, database and the user every client logs in as. */
  upstream: { host: string; port: number; database: string; user: string };
  mode: 'session' | 'transaction';
  /** Folder for its ini, log and pid files (created). */
  dir: string;
}

/** The `pgbouncer` binary: PATH, /usr/sbin, or Debian's package installed when we are root. */
export function resolvePgBouncer(install = true): { bin?: string; why?: string } {
  return findOrInstall({ names: ['pgbouncer'], paths: ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'], aptPackage: 'pgbouncer', install });
}

/** A PgBouncer in front of one database, in session or transaction mode, on a free port (it will not run as root). */
export async function startPgBouncer(bin: string, opts: PgBouncerOptions): Promise<PgBouncer> {
  const as = runAsUser();
  fs.mkdirSync(opts.dir, { recursive: true });
  const port = await freePort();
  const ini = path.join(opts.dir, 'pgbouncer.ini');
  const logFile = path.join(opts.dir, 'pgbouncer.log');
  const u = opts.upstream;
  fs.writeFileSync(
    ini,
    [
      '[databases]',
      `${u.database} = host=${u.host} port=${u.port} dbname=${u.database} user=${u.user}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir =`,
      'auth_type = any',
      `pool_mode = ${opts.mode}`,
      'default_pool_size = 20',
      'max_client_conn = 200',
      'ignore_startup_parameters = extra_float_digits,options',
      `pidfile = ${path.join(opts.dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  fs.closeSync(fs.openSync(logFile, 'a'));
  if (as.uid !== undefined) for (const p of [opts.dir, ini, logFile]) fs.chownSync(p, as.uid, as.gid!);
  const service = startService({ name: 'pgbouncer', command: bin, args: [ini], uid: as.uid, gid: as.gid, cwd: opts.dir, logFile });
  const url = `postgres://${u.user}@127.0.0.1:${port}/${u.database}`;
  let exitCode: number | null | undefined;
  void service.exited.then((c) => (exitCode = c ?? -1));
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await sleep(200)) {
    if (exitCode !== undefined) throw new Error(`pgbouncer exited (${exitCode}):\n${tail(logFile)}`);
    const c = new Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      return { url, port, mode: opts.mode, service, stop: () => service.stop() };
    } catch {
      // not listening yet
    } finally {
      await c.end().catch(() => {});
    }
  }
  await service.stop();
  throw new Error(`pgbouncer did not answer on ${port} within 20s:\n${tail(logFile)}`);
}
