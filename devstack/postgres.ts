import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { Client } from 'pg';
import type { Service } from './process';
import { startService, sleep, tail, which } from './process';
import { freePort } from './ports';

export interface EmbeddedPostgres {
  url: string;
  port: number;
  dataDir: string;
  bindir: string;
  service: Service;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Folder that holds the cluster (data/ and the socket); created when missing. */
  dir: string;
  port?: number;
  logFile: string;
  /** Extra `-c name=value` server settings (tests turn fsync off; benchmarks size shared_buffers). */
  settings?: Record<string, string | number>;
}

/**
 * The superuser a client connects as. Not `stagefill`: PostgreSQL's default
 * search_path is `"$user", public`, so a role named like stagefill's own schema
 * would put every unqualified table a user creates (psql, pgbench -i) next to
 * stagefill's bookkeeping instead of in `public`.
 */
export const DB_USER = 'postgres';
/** The bootstrap superuser of clusters made before the rename; kept working, with `postgres` added beside it. */
const OLD_DB_USER = 'stagefill';
const DB_NAME = 'stagefill';

/** initdb/postgres from $PG_BINDIR, `pg_config --bindir`, or the newest /usr/lib/postgresql/N/bin. */
export function findPostgresBindir(): string {
  const candidates: string[] = [];
  if (process.env.PG_BINDIR) candidates.push(process.env.PG_BINDIR);
  const pgConfig = which('pg_config');
  if (pgConfig) {
    const r = spawnSync(pgConfig, ['--bindir'], { encoding: 'utf8' });
    if (r.status === 0) candidates.push(r.stdout.trim());
  }
  const debian = '/usr/lib/postgresql';
  if (fs.existsSync(debian)) {
    for (const v of fs.readdirSync(debian).sort((a, b) => Number(b) - Number(a))) candidates.push(path.join(debian, v, 'bin'));
  }
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'postgres'))) return dir;
  }
  throw new Error(
    'no PostgreSQL server binaries found (looked at $PG_BINDIR, `pg_config --bindir`, /usr/lib/postgresql/*/bin). ' +
      'Install one (Debian: apt-get install postgresql-15) or set DATABASE_URL to an existing database',
  );
}

export interface RunAs {
  uid?: number;
  gid?: number;
  user?: string;
}

/** Postgres refuses to run as root: when we are root, run it as `postgres` (or `nobody`). */
export function runAsUser(): RunAs {
  if (process.getuid?.() !== 0) return {};
  for (const user of ['postgres', 'nobody']) {
    const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0) return { uid: Number(uid.stdout), gid: Number(gid.stdout), user };
  }
  throw new Error('running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as');
}

/**
 * The cluster must sit where the server's user can reach it. A clone under a
 * root-only folder (mktemp -d is 0700) is not reachable, so the data then
 * lives in a reachable folder and `dir` becomes a link to it.
 */
function reachableDir(dir: string, as: RunAs): string {
  if (as.uid === undefined) return dir;
  const probe = spawnSync('/bin/sh', ['-c', 'test -x "$0" && test -r "$0"', path.dirname(dir)], { uid: as.uid, gid: as.gid });
  if (probe.status === 0) return dir;
  const hash = crypto.createHash('sha1').update(path.resolve(dir)).digest('hex').slice(0, 12);
  const real = path.join(os.tmpdir(), `stagefill-pg-${hash}`);
  fs.mkdirSync(real, { recursive: true, mode: 0o755 });
  fs.chmodSync(real, 0o755);
  return real;
}

function ensureOwned(dir: string, as: RunAs): void {
  fs.mkdirSync(dir, { recursive: true });
  if (as.uid !== undefined) fs.chownSync(dir, as.uid, as.gid!);
}

/** `postgres -D dataDir -c k=v ...` as a service, run as `as`, stopped with SIGINT (a fast shutdown). */
export function startPostgresServer(opts: {
  name: string;
  bindir: string;
  dataDir: string;
  settings: Record<string, string | number>;
  as: RunAs;
  cwd: string;
  logFile: string;
}): Service {
  const args = ['-D', opts.dataDir];
  for (const [k, v] of Object.entries(opts.settings)) args.push('-c', `${k}=${v}`);
  return startService({
    name: opts.name,
    command: path.join(opts.bindir, 'postgres'),
    args,
    uid: opts.as.uid,
    gid: opts.as.gid,
    cwd: opts.cwd,
    stopSignal: 'INT',
    logFile: opts.logFile,
  });
}

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const bindir = findPostgresBindir();
  const as = runAsUser();
  let home = path.resolve(opts.dir);
  fs.mkdirSync(path.dirname(home), { recursive: true });
  const stat = fs.lstatSync(home, { throwIfNoEntry: false });
  if (stat?.isSymbolicLink()) {
    home = fs.realpathSync(home);
  } else if (!stat) {
    const real = reachableDir(home, as);
    if (real !== home) fs.symlinkSync(real, home);
    home = real;
  }
  const dataDir = path.join(home, 'data');
  const socketDir = path.join(home, 'run');
  ensureOwned(home, as);
  ensureOwned(socketDir, as);

  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    fs.rmSync(dataDir, { recursive: true, force: true });
    ensureOwned(dataDir, as);
    fs.chmodSync(dataDir, 0o700);
    const r = spawnSync(
      path.join(bindir, 'initdb'),
      ['-D', dataDir, '-U', DB_USER, '--auth=trust', '--encoding=UTF8', '--no-locale', '--no-sync'],
      { uid: as.uid, gid: as.gid, encoding: 'utf8', cwd: home },
    );
    if (r.status !== 0) throw new Error(`initdb failed: ${(r.stderr || r.stdout).trim()}`);
  }

  const port = opts.port ?? (await freePort());
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    port,
    unix_socket_directories: socketDir,
    max_connections: 200,
    ...opts.settings,
  };
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  if (as.uid !== undefined) {
    fs.closeSync(fs.openSync(opts.logFile, 'a'));
    fs.chownSync(opts.logFile, as.uid, as.gid!);
  }
  const service = startPostgresServer({ name: 'postgres', bindir, dataDir, settings, as, cwd: home, logFile: opts.logFile });
  const adminUrl = `postgres://${DB_USER}@127.0.0.1:${port}/postgres`;
  await waitForPostgres(`postgres://${OLD_DB_USER}@127.0.0.1:${port}/postgres`, service, opts.logFile, adminUrl);
  await ensureRole(port);
  await ensureDatabase(adminUrl, DB_NAME);
  return {
    url: `postgres://${DB_USER}@127.0.0.1:${port}/${DB_NAME}`,
    port,
    dataDir,
    bindir,
    service,
    stop: () => service.stop(),
  };
}

/** Ready when either superuser (the current one or, on an older cluster, the old one) gets an answer. */
async function waitForPostgres(oldUrl: string, service: Service, logFile: string, url: string): Promise<void> {
  let exitCode: number | null | undefined;
  void service.exited.then((c) => (exitCode = c ?? -1));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`postgres exited (${exitCode}):\n${tail(logFile)}`);
    for (const u of [url, oldUrl]) {
      const client = new Client({ connectionString: u, connectionTimeoutMillis: 1000 });
      try {
        await client.connect();
        await client.query('SELECT 1');
        return;
      } catch {
        // not up yet, or not this role
      } finally {
        await client.end().catch(() => {});
      }
    }
    await sleep(200);
  }
  await service.stop();
  throw new Error(`postgres did not accept connections within 60s:\n${tail(logFile)}`);
}

/** A cluster made before the rename has only `stagefill` as superuser: add `postgres` beside it. */
async function ensureRole(port: number): Promise<void> {
  const probe = new Client({ connectionString: `postgres://${DB_USER}@127.0.0.1:${port}/postgres` });
  try {
    await probe.connect();
    return;
  } catch {
    // the role does not exist yet
  } finally {
    await probe.end().catch(() => {});
  }
  const old = new Client({ connectionString: `postgres://${OLD_DB_USER}@127.0.0.1:${port}/postgres` });
  await old.connect();
  try {
    await old.query(`CREATE ROLE ${old.escapeIdentifier(DB_USER)} SUPERUSER LOGIN`);
  } finally {
    await old.end();
  }
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}
