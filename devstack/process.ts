import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * A child process that dies with us. Node cannot set PR_SET_PDEATHSIG, so each
 * service runs under a tiny sh guardian that holds our pipe on fd 3: when this
 * process ends, even by SIGKILL, the pipe closes, `read` returns and the
 * guardian stops the service. Stopping `stagefill dev` so leaves no orphans.
 */
export interface ServiceOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Signal the guardian sends when we die (postgres wants INT for a fast shutdown). */
  stopSignal?: 'TERM' | 'INT';
  logFile: string;
}

export interface Service {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  stop(timeoutMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

const GUARDIAN = [
  'exec 3<&0',
  '"$@" </dev/null &',
  'c=$!',
  "trap 'kill -$SIG $c 2>/dev/null' TERM INT",
  '( read _ <&3; kill -$SIG $c 2>/dev/null ) &',
  'w=$!',
  'wait $c; s=$?',
  // a trapped signal interrupts the first wait; wait again for the real exit
  'while kill -0 $c 2>/dev/null; do wait $c; s=$?; done',
  'kill $w 2>/dev/null; wait $w 2>/dev/null',
  'exit $s',
].join('\n');

export function startService(opts: ServiceOptions): Service {
  const out = fs.openSync(opts.logFile, 'a');
  const child = spawn('/bin/sh', ['-c', GUARDIAN, opts.name, opts.command, ...opts.args], {
    cwd: opts.cwd,
    env: { ...(opts.env ?? process.env), SIG: opts.stopSignal ?? 'TERM' },
    uid: opts.uid,
    gid: opts.gid,
    stdio: ['pipe', out, out],
  });
  fs.closeSync(out);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    name: opts.name,
    child,
    exited,
    kill: (signal) => {
      child.kill(signal);
    },
    async stop(timeoutMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(opts.stopSignal === 'INT' ? 'SIGINT' : 'SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves an executable on PATH, like `command -v`. */
export function which(cmd: string): string | undefined {
  const r = spawnSync('/bin/sh', ['-c', `command -v "$0"`, cmd], { encoding: 'utf8' });
  const found = r.stdout.trim();
  return r.status === 0 && found.startsWith('/') ? found : undefined;
}

export function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
