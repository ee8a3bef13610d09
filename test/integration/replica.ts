import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Client } from 'pg';
import { findPostgresBindir, runAsUser, startPostgresServer } from '../../devstack/postgres';
import type { Service } from '../../devstack/process';
import { freePort } from '../../devstack/ports';

/**
 * A real streaming replica of the test's PostgreSQL: `pg_basebackup -R` from
 * the primary (wal_level replica and the replication line of pg_hba.conf are
 * initdb's defaults), then `postgres -D` on another port as the same user the
 * primary runs as (postgres refuses root). Replay can be paused and resumed.
 */
export interface Replica {
  name: string;
  url: string;
  pauseReplay(): Promise<void>;
  resumeReplay(): Promise<void>;
  stop(): Promise<void>;
}

async function query(url: string, sql: string): Promise<Record<string, unknown>[]> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end().catch(() => {});
  }
}

export async function startReplica(primaryUrl: string, name = 'replica1'): Promise<Replica> {
  const bindir = findPostgresBindir();
  const as = runAsUser();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-replica-'));
  fs.chmodSync(home, 0o755);
  const dataDir = path.join(home, 'data');
  const socketDir = path.join(home, 'run');
  for (const d of [dataDir, socketDir]) {
    fs.mkdirSync(d, { mode: 0o700 });
    if (as.uid !== undefined) fs.chownSync(d, as.uid, as.gid!);
  }
  if (as.uid !== undefined) fs.chownSync(home, as.uid, as.gid!);
  const primary = new URL(primaryUrl);
  const backup = spawnSync(
    path.join(bindir, 'pg_basebackup'),
    [
      '-h',
      primary.hostname,
      '-p',
      primary.port,
      '-U',
      decodeURIComponent(primary.username),
      '-D',
      dataDir,
      '-X',
      'stream',
      '-R',
      '--checkpoint=fast',
      '--no-sync',
    ],
    { uid: as.uid, gid: as.gid, encoding: 'utf8', cwd: home },
  );
  if (backup.status !== 0) {
    fs.rmSync(home, { recursive: true, force: true });
    throw new Error(`pg_basebackup failed: ${(backup.stderr || backup.stdout).trim()}`);
  }
  const port = await freePort();
  const logFile = path.join(home, 'replica.log');
  fs.closeSync(fs.openSync(logFile, 'a'));
  if (as.uid !== undefined) fs.chownSync(logFile, as.uid, as.gid!);
  // a hot standby needs at least the primary's values of these
  const mins = await query(
    primaryUrl,
    `SELECT name, setting FROM pg_settings WHERE name IN ('max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction')`,
  );
  const settings: Record<string, string | number> = {
    ...Object.fromEntries(mins.map((r) => [String(r.name), String(r.setting)])),
    port,
    listen_addresses: '127.0.0.1',
    unix_socket_directories: socketDir,
    hot_standby: 'on',
    // the name it streams under (application_name in pg_stat_replication)
    cluster_name: name,
    // report replay positions every second, so the primary's view is fresh
    wal_receiver_status_interval: '1s',
    fsync: 'off',
  };
  const service: Service = startPostgresServer({ name: 'replica', bindir, dataDir, settings, as, cwd: home, logFile });
  const url = `postgres://${primary.username}@127.0.0.1:${port}/${primary.pathname.slice(1)}`;
  const deadline = Date.now() + 30_000;
  let exited = false;
  void service.exited.then(() => (exited = true));
  for (;;) {
    const rows = await query(primaryUrl, `SELECT state FROM pg_stat_replication WHERE application_name = '${name}'`).catch(() => []);
    if (rows[0]?.state === 'streaming') break;
    if (Date.now() > deadline || exited) {
      await service.stop();
      const log = fs.readFileSync(logFile, 'utf8').slice(-2000);
      fs.rmSync(home, { recursive: true, force: true });
      throw new Error(`replica did not start streaming within 30s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  let stopped = false;
  return {
    name,
    url,
    pauseReplay: async () => void (await query(url, 'SELECT pg_wal_replay_pause()')),
    resumeReplay: async () => void (await query(url, 'SELECT pg_wal_replay_resume()')),
    async stop() {
      if (stopped) return;
      stopped = true;
      await service.stop();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}
