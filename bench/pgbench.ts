import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';

/** How pgbench reaches the database: the parts of a postgres:// URL it takes as flags. */
export interface PgTarget {
  bindir: string;
  url: string;
}

function connectionArgs(url: string): string[] {
  const u = new URL(url);
  const args = ['-h', u.hostname, '-p', u.port || '5432'];
  if (u.username) args.push('-U', decodeURIComponent(u.username));
  return args;
}

function dbName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'postgres';
}

function childEnv(url: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  return {
    ...process.env,
    PGPASSWORD: u.password ? decodeURIComponent(u.password) : process.env.PGPASSWORD,
    // pgbench's tables go to public whatever the role's search_path (a role named like a schema, e.g. `stagefill`, would put them there).
    PGOPTIONS: '-c search_path=public',
  };
}

function run(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out }));
  });
}

/** `pgbench -i -s SCALE`, generating rows server-side (the client-side path is slower and measures nothing of ours). */
export async function initPgbench(t: PgTarget, scale: number): Promise<void> {
  const r = await run(
    path.join(t.bindir, 'pgbench'),
    ['-i', '-s', String(scale), '-I', 'dtGvp', '-q', ...connectionArgs(t.url), dbName(t.url)],
    childEnv(t.url),
  );
  if (r.code !== 0) throw new Error(`pgbench -i -s ${scale} failed (${r.code}):\n${r.out.trim()}`);
}

export interface LoadOptions {
  clients: number;
  /** Transactions per second over all clients; unthrottled when absent. */
  rate?: number;
  seconds: number;
  /** Per-transaction log files go to `<logPrefix>.<pid>`. */
  logPrefix: string;
}

export interface LoadRun {
  child: ChildProcess;
  startedAtMs: number;
  done: Promise<LoadOutput>;
  /**
   * Ends the load early (SIGINT). pgbench then loses the last few lines of its
   * buffered log, so stop only once the measured window is well behind.
   */
  stop(): void;
}

export interface LoadOutput {
  tps: number | undefined;
  transactions: Transaction[];
  stdout: string;
}

export interface Transaction {
  /** Epoch ms the transaction was scheduled (throttled) or began (unthrottled). */
  startMs: number;
  endMs: number;
  latencyMs: number;
  failed: boolean;
}

/**
 * TPC-B-like pgbench with a per-transaction log. With -R, pgbench measures
 * latency from the scheduled start, so time spent queued behind a blocked
 * client counts: a backfill that blocks the load shows up in full.
 */
export function startLoad(t: PgTarget, o: LoadOptions): LoadRun {
  fs.mkdirSync(path.dirname(o.logPrefix), { recursive: true });
  const args = ['-c', String(o.clients), '-j', '1', '-T', String(o.seconds), '-n', '-l', '--log-prefix', o.logPrefix];
  if (o.rate) args.push('-R', String(o.rate));
  args.push(...connectionArgs(t.url), dbName(t.url));
  const child = spawn(path.join(t.bindir, 'pgbench'), args, { env: childEnv(t.url), stdio: ['ignore', 'pipe', 'pipe'] });
  const startedAtMs = Date.now();
  let out = '';
  let isStopped = false;
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<LoadOutput>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code !== 0 && !(isStopped && signal === 'SIGINT')) {
        reject(new Error(`pgbench load exited with ${code}:\n${out.trim().split('\n').slice(-15).join('\n')}`));
        return;
      }
      const logFile = `${o.logPrefix}.${child.pid}`;
      const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out);
      resolve({ tps: tps ? Number(tps[1]) : undefined, transactions: readTransactionLog(logFile), stdout: out });
    });
  });
  return {
    child,
    startedAtMs,
    done,
    stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      isStopped = true;
      child.kill('SIGINT');
    },
  };
}

/**
 * pgbench's per-transaction log: `client txn time script epoch_s epoch_us [lag]`;
 * `time` is microseconds, or "failed"/"skipped".
 */
export function readTransactionLog(file: string): Transaction[] {
  const out: Transaction[] = [];
  const text = fs.readFileSync(file, 'utf8');
  // a pgbench stopped by SIGINT can leave a half-written last line
  const lines = text.split('\n');
  if (!text.endsWith('\n')) lines.pop();
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    const endMs = Number(f[4]) * 1000 + Number(f[5]) / 1000;
    if (f[2] === 'failed' || f[2] === 'skipped') {
      out.push({ startMs: endMs, endMs, latencyMs: Number.NaN, failed: true });
      continue;
    }
    const latencyMs = Number(f[2]) / 1000;
    out.push({ startMs: endMs - latencyMs, endMs, latencyMs, failed: false });
  }
  return out;
}

export interface LatencySummary {
  transactions: number;
  failed: number;
  p50: number;
  p99: number;
  max: number;
  /** Transactions completed per second over the window. */
  tps: number;
}

/** [fromMs, toMs) cut into windows of sizeMs, each with its latency; the last one is shorter, or left out when `wholeOnly`. */
export function perWindow(
  txns: Transaction[],
  fromMs: number,
  toMs: number,
  sizeMs: number,
  wholeOnly = false,
): { fromMs: number; latency: LatencySummary }[] {
  const out: { fromMs: number; latency: LatencySummary }[] = [];
  for (let from = fromMs; from < toMs && (!wholeOnly || from + sizeMs <= toMs); from += sizeMs)
    out.push({ fromMs: from, latency: summarize(txns, from, Math.min(toMs, from + sizeMs)) });
  return out;
}

/** Latency of the transactions that started inside [fromMs, toMs). */
export function summarize(txns: Transaction[], fromMs: number, toMs: number): LatencySummary {
  const inWindow = txns.filter((x) => x.startMs >= fromMs && x.startMs < toMs);
  const ok = inWindow
    .filter((x) => !x.failed)
    .map((x) => x.latencyMs)
    .sort((a, b) => a - b);
  const pct = (p: number) => ok[Math.min(ok.length - 1, Math.ceil((p / 100) * ok.length) - 1)] ?? Number.NaN;
  return {
    transactions: inWindow.length,
    failed: inWindow.length - ok.length,
    p50: pct(50),
    p99: pct(99),
    max: ok.at(-1) ?? Number.NaN,
    tps: inWindow.length / Math.max(0.001, (toMs - fromMs) / 1000),
  };
}
