import fs from 'node:fs';
import os from 'node:os';

/**
 * How busy the machine was with work that is not the benchmark's. The
 * benchmark's own processes (PostgreSQL, Temporal, the worker, pgbench) all
 * descend from this process; anything else that used CPU during a run slowed
 * it, and the report says how much.
 */
export interface CpuSnapshot {
  atMs: number;
  machineBusyMs: number;
  /** CPU the hypervisor gave other guests while this one wanted it (steal), part of machineBusyMs. */
  stealMs: number;
  oursMs: number;
}

const TICK_MS = 1000 / 100; // USER_HZ is 100 on Linux

function machineCpu(): { busyMs: number; stealMs: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal ... (a kernel without steal leaves it out)
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  return { busyMs: (user + nice + system + irq + softirq + steal) * TICK_MS, stealMs: steal * TICK_MS };
}

function childrenOf(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** utime + stime of the process and of its children that have exited and been waited for. */
function cpuOfMs(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * TICK_MS;
  } catch {
    return 0;
  }
}

function treeCpuMs(pid: number): number {
  return cpuOfMs(pid) + childrenOf(pid).reduce((s, c) => s + treeCpuMs(c), 0);
}

export function cpuSnapshot(): CpuSnapshot {
  const m = machineCpu();
  return { atMs: Date.now(), machineBusyMs: m.busyMs, stealMs: m.stealMs, oursMs: treeCpuMs(process.pid) };
}

/** Cores' worth of CPU used by other work between two snapshots (0 on a quiet machine). */
export function otherCores(a: CpuSnapshot, b: CpuSnapshot): number {
  const wall = Math.max(1, b.atMs - a.atMs);
  const other = b.machineBusyMs - a.machineBusyMs - (b.oursMs - a.oursMs);
  // exited grandchildren are counted late or never; never report negative load
  return Math.max(0, other / wall);
}

/** Cores' worth of steal between two snapshots: the share of the other load the host took, not this machine's work. */
export function stealCores(a: CpuSnapshot, b: CpuSnapshot): number {
  return Math.max(0, (b.stealMs - a.stealMs) / Math.max(1, b.atMs - a.atMs));
}

export const cores = () => os.availableParallelism();

/**
 * Reads the machine's CPU every `everyMs` until stopped: the other work's
 * CPU since the first reading, for the other load in each window of a run
 * (bench/paired-windows.ts withOtherLoad).
 */
export function startCpuReadings(everyMs = 1000): { readings: { atMs: number; otherMs: number }[]; stop(): void } {
  const first = cpuSnapshot();
  const readings = [{ atMs: first.atMs, otherMs: 0 }];
  const read = () => {
    const now = cpuSnapshot();
    readings.push({ atMs: now.atMs, otherMs: otherCores(first, now) * Math.max(1, now.atMs - first.atMs) });
  };
  const timer = setInterval(read, everyMs);
  return {
    readings,
    stop() {
      clearInterval(timer);
      read();
    },
  };
}
