import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startEmbeddedPostgres } from '../../devstack';
import type { EmbeddedPostgres } from '../../devstack/postgres';
import { createPool } from '../../db/pool';
import { backfillWorkflow } from '../../workflows/backfill/workflow';
import { parseBackfillSpec } from '../../steps/spec';
import { selfSigned } from './certs';
import { client, useStack, spawnWorker, exited, unique } from './harness';

jest.setTimeout(120_000);

/**
 * PostgreSQL over TLS, configured only through DATABASE_URL: a cluster of its
 * own with ssl=on and a self-signed certificate, a worker that verifies it.
 */
let pg: EmbeddedPostgres;

let dir: string;

// the cluster's own folder, not useStack's `dir`: that one goes before this file's afterAll stops the cluster
useStack();

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-tls-'));
  fs.chmodSync(dir, 0o755);
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  selfSigned(undefined, '/CN=127.0.0.1', key, cert, ['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
  // the server runs as a non-root user when we are root, and insists its key is private to it
  const uid =
    process.getuid?.() === 0
      ? Number(
          spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout ||
            spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout,
        )
      : process.getuid!();
  for (const f of [cert, key]) fs.chownSync(f, uid, -1);
  fs.chmodSync(key, 0o600);
  pg = await startEmbeddedPostgres({
    dir: path.join(dir, 'pg'),
    logFile: path.join(dir, 'postgres.log'),
    settings: { ssl: 'on', ssl_cert_file: cert, ssl_key_file: key, fsync: 'off', shared_buffers: '32MB' },
  });
});

afterAll(async () => {
  await pg?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a worker given sslmode=verify-full in DATABASE_URL backfills over TLS', async () => {
  const admin = createPool({ url: pg.url, max: 1 });
  const table = `public.${unique('t')}`;
  await admin.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0)`);
  await admin.query(`INSERT INTO ${table} (id) SELECT generate_series(1, 2000)`);
  const url = `${pg.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(path.join(dir, 'server.crt'))}`;
  const taskQueue = unique('q');
  const worker = spawnWorker(taskQueue, { DATABASE_URL: url });
  try {
    const spec = parseBackfillSpec({
      kind: 'backfill',
      name: unique('tls'),
      table,
      key: 'id',
      chunkSize: 500,
      transform: `UPDATE ${table} SET n = n + 1 WHERE id >= :lo AND id < :hi`,
    });
    // a worker that cannot connect exits: fail with its own words instead of waiting for the run
    const died = exited(worker).then((code) => {
      throw new Error(`worker exited (${code}): ${worker.output()}`);
    });
    const result = await Promise.race([
      client.workflow.execute(backfillWorkflow, { taskQueue, workflowId: unique('tls'), args: [{ spec }] }),
      died,
    ]);
    expect(result.state).toBe('completed');
    expect((await admin.query(`SELECT count(*)::int AS c FROM ${table} WHERE n = 1`)).rows[0].c).toBe(2000);
    // the worker's own connections were encrypted
    const ssl = await admin.query(
      `SELECT bool_and(s.ssl) AS all_ssl, count(*)::int AS n FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid WHERE a.application_name = 'stagefill-worker'`,
    );
    expect(ssl.rows[0].n).toBeGreaterThan(0);
    expect(ssl.rows[0].all_ssl).toBe(true);
  } finally {
    worker.kill('SIGTERM');
    await exited(worker);
    await admin.end();
  }
});
