import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFile, ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { Client as PgClient } from 'pg';
import { ROOT, exited, waitFor, unique } from './harness';
import { recordFacts } from './report';

// Needs dist/ (`npx tsc -p tsconfig.build.json`): `stagefill dev` runs as a real process, with its own state dir.
jest.setTimeout(180_000);

const run = promisify(execFile);
const KEYS = ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_UI', 'TEMPORAL_CLI', 'DATABASE_URL'] as const;
type DevEnv = Record<(typeof KEYS)[number], string>;

let stateDir: string;
let pgHome: string | undefined;

beforeAll(() => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-dev-test-'));
});
afterAll(() => {
  // the cluster may live behind a link (devstack/postgres.ts): remove both
  if (pgHome) fs.rmSync(pgHome, { recursive: true, force: true });
  fs.rmSync(stateDir, { recursive: true, force: true });
});

/** `stagefill dev` on its own stack: the test stack's addresses are removed from its environment. */
function startDev(): ChildProcess & { out: () => string } {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, STAGEFILL_STATE_DIR: stateDir };
  for (const k of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_UI', 'DATABASE_URL']) delete childEnv[k];
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'client', 'cli.js'), 'dev'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return Object.assign(child, { out: () => out });
}

async function fiveLines(dev: ChildProcess & { out: () => string }): Promise<DevEnv> {
  return waitFor(
    'the five lines',
    async () => {
      if (dev.exitCode !== null) throw new Error(`stagefill dev exited ${dev.exitCode}:\n${dev.out()}`);
      const lines = Object.fromEntries(
        dev
          .out()
          .split('\n')
          .map((l) => /^([A-Z_]+)=(.*)$/.exec(l))
          .filter((m): m is RegExpExecArray => Boolean(m))
          .map((m) => [m[1], m[2]]),
      );
      return KEYS.every((k) => lines[k]) && (lines as DevEnv);
    },
    120_000,
  );
}

/** Every process whose command line names this dev stack's state: its Temporal server and its Postgres. */
function stackProcesses(): string[] {
  const needles = [stateDir, ...(pgHome ? [pgHome] : [])];
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd = '';
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue; // gone meanwhile
    }
    if (needles.some((n) => cmd.includes(n)) && !cmd.includes('jest')) found.push(`${pid} ${cmd.slice(0, 120)}`);
  }
  return found;
}

/** A shell that sources dev.env, as a developer's second terminal would, and runs `temporal` with nothing but that. */
async function inSourcedShell(script: string): Promise<string> {
  const clean: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: os.tmpdir() };
  const { stdout } = await run('bash', ['-c', `set -euo pipefail; source "$0"; ${script}`, path.join(stateDir, 'dev.env')], { env: clean, encoding: 'utf8' });
  return stdout;
}

test('stagefill dev: five lines, a sourceable dev.env, temporal CLI works, no orphans after SIGKILL, history and data survive a restart', async () => {
  const probe = unique('dev-probe');
  let dev = startDev();
  try {
    const first = await fiveLines(dev);
    expect(first.TEMPORAL_ADDRESS).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(first.TEMPORAL_NAMESPACE).toBe('default');
    expect(first.TEMPORAL_UI).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(fs.existsSync(first.TEMPORAL_CLI)).toBe(true);
    expect(first.DATABASE_URL).toMatch(/^postgres:\/\//);
    const pgLink = path.join(stateDir, 'pg');
    pgHome = fs.realpathSync(pgLink);

    // another shell: `source dev.env`, then the temporal CLI reads TEMPORAL_ADDRESS/TEMPORAL_NAMESPACE from it
    const sourced = await inSourcedShell('echo "$TEMPORAL_ADDRESS|$TEMPORAL_NAMESPACE|$TEMPORAL_UI|$TEMPORAL_CLI|$DATABASE_URL"');
    expect(sourced.trim()).toBe(KEYS.map((k) => first[k]).join('|'));
    await inSourcedShell(`"$TEMPORAL_CLI" workflow start --type devProbe --task-queue dev-probe --workflow-id ${probe}`);
    expect(await inSourcedShell('"$TEMPORAL_CLI" workflow list')).toContain(probe);
    const ui = await fetch(first.TEMPORAL_UI);
    expect(ui.status).toBe(200);
    const db = new PgClient({ connectionString: first.DATABASE_URL });
    await db.connect();
    await db.query('CREATE TABLE kept_across_restarts (id int)');
    await db.end();

    // SIGKILL: no chance to clean up; the guardians must stop Temporal and Postgres
    expect(stackProcesses().length).toBeGreaterThanOrEqual(2);
    dev.kill('SIGKILL');
    await exited(dev);
    await waitFor('no process of the dev stack left', async () => stackProcesses().length === 0, 60_000);

    dev = startDev();
    const second = await fiveLines(dev);
    const described = await inSourcedShell(`"$TEMPORAL_CLI" workflow describe --workflow-id ${probe}`);
    expect(described).toContain('devProbe');
    const db2 = new PgClient({ connectionString: second.DATABASE_URL });
    await db2.connect();
    const kept = await db2.query(`SELECT to_regclass('public.kept_across_restarts') IS NOT NULL AS kept`);
    await db2.end();
    expect(kept.rows[0].kept).toBe(true);

    dev.kill('SIGTERM');
    expect(await exited(dev)).toBe(0);
    expect(stackProcesses()).toEqual([]);
    recordFacts('stagefill dev SIGKILLed and restarted', { orphansAfterSigkill: 0, historyKept: true, databaseKept: true, exitCodeOnSigterm: 0 });
  } finally {
    if (dev.exitCode === null && dev.signalCode === null) {
      dev.kill('SIGKILL');
      await exited(dev);
    }
  }
});
