import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sleep } from '../devstack';
import type { StagefillConnection } from '../client/connection';
import { startChaosStack } from './stack';
import { createWorkload, classOf, RUN_KINDS, type RunKind, type RunRecord, type WorkloadOptions } from './workload';
import { startFaults, FAULT_KINDS, type FaultKind, type FaultOptions, type FaultRecord } from './faults';
import { clockSkewMs, RUN_CLASSES, type RunClass } from './schedule';
import { checkCampaign, type Violation } from './checker';

export interface CampaignOptions {
  minutes: number;
  seed: number;
  /** Project root (dist/worker is started from it). */
  root: string;
  /** Where the stack keeps its data and logs. */
  dir: string;
  workers: number;
  /** Runs of each class kept in flight at once while the campaign lasts (fleets > 0: the stack makes tenant databases). */
  inFlight: Record<RunClass, number>;
  /** Tenant databases for the fleets. */
  tenants: number;
  /** Worker 0's clock skewed by the seed's offset (chaos/clock-skew.ts). */
  skewedWorker: boolean;
  workload: WorkloadOptions;
  faults: FaultOptions;
  /** After the last fault: how long the runs still open get to close before they count as stuck. */
  settleMs: number;
  bundlePath?: string;
  log: (m: string) => void;
}

/** The defaults of `npm run chaos`: gaps of 3-12 s between faults of 1-8 s each, three workers, one of them clock-skewed. */
export function defaultOptions(root: string, dir: string, minutes: number, seed: number, log: (m: string) => void): CampaignOptions {
  return {
    minutes,
    seed,
    root,
    dir,
    workers: 3,
    inFlight: { backfill: 3, rollout: 2, graph: 1, fleet: 1 },
    tenants: 4,
    skewedWorker: true,
    workload: { rowsPerTable: 6000, maxRowsPerSecond: 1000, liveWriteEveryMs: 150 },
    faults: { gapMs: [3000, 12000], downMs: [1000, 8000] },
    settleMs: 300_000,
    log,
  };
}

export interface RecoveryFigures {
  count: number;
  medianMs: number | null;
  maxMs: number | null;
  /** Faults after which no progress came within the bound (no run needed any). */
  unseen: number;
}

export interface CampaignReport {
  seed: number;
  minutes: number;
  startedAt: string;
  seconds: number;
  machine: string;
  options: Omit<CampaignOptions, 'log' | 'root' | 'dir' | 'bundlePath'>;
  faults: FaultRecord[];
  faultsByKind: Record<FaultKind, number>;
  recoveryByKind: Record<FaultKind, RecoveryFigures>;
  runs: Omit<RunRecord, 'before'>[];
  runsByKind: Record<RunKind, Record<string, number>>;
  rowsChecked: number;
  violations: Violation[];
  /** Worker 0's clock offset (ms, ahead when positive; 0: no skewed worker). */
  clockSkewMs: number;
  /** Worker starts refused because Temporal or PostgreSQL was down then (exit 1 with one line, as designed). */
  refusedStarts: number;
  /** The webhook receiver: events answered 200 (retries of one event share its id), and requests it refused or let time out. */
  webhook: { events: number; deliveries: number; refused: number };
}

export async function runCampaign(opts: CampaignOptions): Promise<CampaignReport> {
  const { log } = opts;
  const startedAt = new Date();
  const taskQueue = `chaos-${opts.seed}`;
  const skew = opts.skewedWorker ? clockSkewMs(opts.seed) : 0;
  log(`starting PostgreSQL, the Temporal dev server and ${opts.workers} workers under ${opts.dir}`);
  const stack = await startChaosStack({
    root: opts.root,
    dir: opts.dir,
    workers: opts.workers,
    taskQueue,
    log,
    bundlePath: opts.bundlePath,
    tenants: opts.inFlight.fleet > 0 ? opts.tenants : 0,
    clockSkewMs: skew,
  });
  try {
    const t0 = Date.now();
    const conn: StagefillConnection = {
      client: stack.client,
      taskQueue,
      namespace: stack.namespace,
      address: stack.address,
      close: async () => {},
    };
    if (skew) log(`worker 0's clock runs ${Math.abs(skew / 1000)} s ${skew > 0 ? 'ahead' : 'behind'}`);
    const workload = createWorkload(stack, conn, opts.seed, opts.workload, t0);
    const faults = startFaults(stack, opts.seed, opts.minutes, opts.faults, t0, log);
    const deadline = t0 + opts.minutes * 60_000;
    while (Date.now() < deadline) {
      const open = workload.inFlight();
      // the first class short of its runs in flight starts its next run (the seed's: chaos/schedule.ts plannedRun)
      const cls = RUN_CLASSES.find((c) => open.filter((r) => classOf(r.kind) === c).length < opts.inFlight[c]);
      if (cls) {
        const r = await workload.start(cls);
        log(`run ${r.name} started${r.decision ? ` (${r.decision} at approval)` : ''}`);
      } else await sleep(1000);
    }
    log(`time is up: no new faults or runs; ${workload.inFlight().length} runs still open get ${opts.settleMs / 1000}s to close`);
    await faults.stop();
    await workload.settle(opts.settleMs);
    await workload.stop();
    await faults.finish();
    log('checking');
    const { violations, rowsChecked } = await checkCampaign(stack.pool, stack.tenants, workload.runs);
    const report: CampaignReport = {
      seed: opts.seed,
      minutes: opts.minutes,
      startedAt: startedAt.toISOString(),
      seconds: Math.round((Date.now() - t0) / 1000),
      machine: `${os.cpus().length} cores, load ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join('/')} at the end, Node ${process.version}`,
      options: {
        minutes: opts.minutes,
        seed: opts.seed,
        workers: opts.workers,
        inFlight: opts.inFlight,
        tenants: opts.tenants,
        skewedWorker: opts.skewedWorker,
        workload: opts.workload,
        faults: opts.faults,
        settleMs: opts.settleMs,
      },
      faults: faults.faults,
      faultsByKind: Object.fromEntries(FAULT_KINDS.map((k) => [k, faults.faults.filter((f) => f.kind === k).length])) as Record<
        FaultKind,
        number
      >,
      recoveryByKind: Object.fromEntries(FAULT_KINDS.map((k) => [k, recoveryOf(faults.faults.filter((f) => f.kind === k))])) as Record<
        FaultKind,
        RecoveryFigures
      >,
      runs: workload.runs.map(({ before: _before, ...r }) => r),
      runsByKind: runsByKind(workload.runs),
      rowsChecked,
      // a worker that crashed is a violation whatever the runs show: in production it takes every run it holds down with it
      violations: [...violations, ...stack.workers.flatMap((w) => w.crashes.map((what) => ({ run: '-', what })))],
      clockSkewMs: skew,
      refusedStarts: stack.workers.reduce((n, w) => n + w.refusedStarts, 0),
      webhook: {
        events: stack.webhook.delivered.size,
        deliveries: [...stack.webhook.delivered.values()].reduce((a, b) => a + b, 0),
        refused: stack.webhook.refused,
      },
    };
    fs.writeFileSync(path.join(opts.dir, 'report.json'), JSON.stringify(report, null, 2));
    return report;
  } finally {
    await stack.stop();
  }
}

function recoveryOf(faults: FaultRecord[]): RecoveryFigures {
  const seen = faults
    .map((f) => f.recoveryMs)
    .filter((ms): ms is number => ms !== null)
    .sort((a, b) => a - b);
  return {
    count: faults.length,
    medianMs: seen[Math.floor(seen.length / 2)] ?? null,
    maxMs: seen.at(-1) ?? null,
    unseen: faults.length - seen.length,
  };
}

function runsByKind(runs: RunRecord[]): Record<RunKind, Record<string, number>> {
  const out = Object.fromEntries(RUN_KINDS.map((k) => [k, {}])) as Record<RunKind, Record<string, number>>;
  for (const r of runs) {
    const outcome = r.outcome === undefined ? 'still open' : r.decision ? `${r.outcome} (${r.decision} asked)` : r.outcome;
    out[r.kind][outcome] = (out[r.kind][outcome] ?? 0) + 1;
  }
  return out;
}
