import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import YAML from 'yaml';
import { env, ROOT, unique, taskQueue } from './harness';

/** The compiled CLI as an operator runs it: a process, configured by the worker's variables. */
export const CLI = path.join(ROOT, 'dist', 'client', 'cli.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cliEnv(taskQueue: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e = env();
  return {
    ...process.env,
    TEMPORAL_ADDRESS: e.address,
    TEMPORAL_NAMESPACE: e.namespace,
    DATABASE_URL: e.databaseUrl,
    STAGEFILL_TASK_QUEUE: taskQueue,
    STAGEFILL_ACTOR: 'cli-test',
    CI: '1',
    ...extra,
  };
}

/** Starts the CLI; `done` resolves when it exits. Async, so a worker in this process keeps polling meanwhile. */
export function spawnCli(
  args: string[],
  childEnv: NodeJS.ProcessEnv,
): { child: ChildProcess; output(): CliResult; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return { child, output: () => ({ code: child.exitCode, stdout, stderr }), done };
}

export async function runCli(args: string[], childEnv: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<CliResult> {
  const run = spawnCli(args, childEnv);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), timeoutMs);
  try {
    return await run.done;
  } finally {
    clearTimeout(timer);
  }
}

/** The CLI on the file's task queue (`useStack({ worker: true })` serves it), configured by the worker's variables. */
export const cli = (...args: string[]) => runCli(args, cliEnv(taskQueue));

/** `stagefill status <id> --json`, parsed. */
export async function cliStatus<T = { state: string }>(id: string): Promise<T> {
  return JSON.parse((await cli('status', id, '--json')).stdout) as T;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
}

/** Writes a spec as YAML, the way an operator keeps it. */
export function writeSpec(dir: string, spec: Record<string, unknown>): string {
  const file = path.join(dir, `${String(spec.name ?? unique('spec'))}.yaml`);
  fs.writeFileSync(file, YAML.stringify(spec));
  return file;
}

export function counterBackfill(table: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'backfill',
    name: unique('bf'),
    table,
    key: 'id',
    chunkSize: 500,
    parallelism: 2,
    transform: `UPDATE ${table} SET n = n + 1 WHERE id >= :lo AND id < :hi`,
    ...extra,
  };
}
