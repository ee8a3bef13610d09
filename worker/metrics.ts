import http from 'node:http';
import { Counter, Histogram, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Queryable } from '../db/pool';
import type { BacklogRow } from '../db/audit';
import { openBackfillBacklog } from '../db/audit';
import type { ControlMetrics } from '../activities/backfill/probe-metrics';

/** Where the backlog gauge reads from at scrape time; unset, the gauge stays empty. */
export type BacklogSource = () => Promise<BacklogRow[]>;

/**
 * stagefill's own metrics; the SDK's Runtime metrics are merged in by the
 * worker's /metrics handler. ops/ (Grafana dashboard, alert rules) queries
 * these names, and test/unit/ops-metrics.test.ts keeps the two in step.
 */
export function createMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'stagefill_process_' });
  const labelNames = ['kind', 'table'] as const;
  let backlogSource: BacklogSource | undefined;
  // Both backlog gauges read one query per scrape: the first collect() starts it, the second reuses it.
  let backlogRead: { at: number; rows: Promise<BacklogRow[]> } | undefined;
  const readBacklog = (): Promise<BacklogRow[]> => {
    if (!backlogSource) return Promise.resolve([]);
    if (!backlogRead || Date.now() - backlogRead.at > 1000) backlogRead = { at: Date.now(), rows: backlogSource().catch(() => []) };
    return backlogRead.rows;
  };
  const backlogLabels = ['kind', 'table', 'name', 'state'] as const;
  const backlogPlanned: Gauge<(typeof backlogLabels)[number]> = new Gauge({
    name: 'stagefill_backfill_rows_planned',
    help: "Rows in the current generation of each unfinished backfill (from stagefill's tables, read at scrape time)",
    labelNames: backlogLabels,
    registers: [registry],
    async collect() {
      backlogPlanned.reset();
      for (const b of await readBacklog())
        backlogPlanned.set({ kind: 'backfill', table: b.table, name: b.name, state: b.state }, b.rowsPlanned);
    },
  });
  const backlogRemaining: Gauge<(typeof backlogLabels)[number]> = new Gauge({
    name: 'stagefill_backfill_rows_remaining',
    help: 'Rows of each unfinished backfill not yet covered by a checkpoint; with the rate of stagefill_rows_processed_total it gives the ETA',
    labelNames: backlogLabels,
    registers: [registry],
    async collect() {
      backlogRemaining.reset();
      for (const b of await readBacklog())
        backlogRemaining.set({ kind: 'backfill', table: b.table, name: b.name, state: b.state }, Math.max(0, b.rowsPlanned - b.rowsDone));
    },
  });
  const divergenceGauge = new Gauge({
    name: 'stagefill_gate_divergence',
    help: 'Last measured deviation of a check from its expectation (0 = within bounds); removed when the rollout finishes',
    labelNames: ['kind', 'table', 'check'] as const,
    registers: [registry],
  });
  const gateDivergence = new DivergenceSeries(divergenceGauge);
  const control = controlMetrics(registry);
  const lanesBackingOff = new Gauge({
    name: 'stagefill_backfill_lanes_backing_off',
    help: 'Lanes of a backfill waiting for its health check now (its state is backing_off; 0 once they go on)',
    labelNames,
    registers: [registry],
  });
  return {
    registry,
    rowsProcessed: new Counter({
      name: 'stagefill_rows_processed_total',
      help: 'Rows written by committed chunks',
      labelNames,
      registers: [registry],
    }),
    chunksCommitted: new Counter({
      name: 'stagefill_chunks_committed_total',
      help: 'Chunks committed with their checkpoint',
      labelNames,
      registers: [registry],
    }),
    chunkSeconds: new Histogram({
      name: 'stagefill_chunk_duration_seconds',
      help: 'Time from BEGIN to COMMIT of one chunk',
      labelNames,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    throttleWaitSeconds: new Counter({
      name: 'stagefill_throttle_wait_seconds_total',
      help: 'Time chunks waited for the rate limit, the health probe or a lock',
      labelNames,
      registers: [registry],
    }),
    healthBackoffSeconds: new Counter({
      name: 'stagefill_health_backoff_seconds_total',
      help: "Time leases backed off because the backfill's health check returned more than its max",
      labelNames,
      registers: [registry],
    }),
    lanesBackingOff,
    gateResults: new Counter({
      name: 'stagefill_gate_results_total',
      help: 'Gate and soak check results',
      labelNames: ['kind', 'table', 'check', 'result'] as const,
      registers: [registry],
    }),
    gateDivergence,
    /**
     * A finished rollout (completed, rolled back, failed, cancelled) leaves no
     * gauge behind: its tables' divergence series go, so no alert fires for a
     * run that is over. One rollout at a time holds a table, so the table names it.
     */
    forgetRollout(tables: string[]) {
      gateDivergence.forget(tables);
    },
    /** A finished backfill leaves no gauge behind either: the throttle's series of (table, name), its table's lanes backing off. */
    async forgetBackfill(table: string, name: string) {
      for (const g of Object.values(control)) if (g instanceof Gauge) await forgetSeries(g, (l) => l.table === table && l.name === name);
      await forgetSeries(lanesBackingOff, (l) => l.table === table && l.kind === 'backfill');
    },
    rollbacks: new Counter({ name: 'stagefill_rollbacks_total', help: 'Rollouts rolled back', labelNames, registers: [registry] }),
    workerGetsNoWork: new Gauge({
      name: 'stagefill_worker_gets_no_work',
      help: "1: this worker's task queue sends its work to another worker deployment version (the worker's log at start says which, and how to hand it back)",
      labelNames: ['task_queue', 'deployment', 'current_build'] as const,
      registers: [registry],
    }),
    backlogRemaining,
    backlogPlanned,
    // the latency-budget / replica-lag throttle (activities/backfill/probe.ts sets these once per controller step)
    ...control,
    /** Feeds the backlog gauges; the worker passes its pool (see backlogFromPool). */
    setBacklogSource(source: BacklogSource | undefined) {
      backlogSource = source;
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

type DivergenceLabels = { kind: string; table: string; check: string };

/** Removes a gauge's series whose labels match (prom-client keeps a series until it is removed). */
async function forgetSeries<T extends string>(gauge: Gauge<T>, match: (labels: Partial<Record<string, string | number>>) => boolean) {
  const { values } = await gauge.get();
  for (const { labels } of values) if (match(labels)) gauge.remove(labels);
}

/** The gate-divergence gauge, remembering its series so a finished rollout's can be removed. */
export class DivergenceSeries {
  private readonly series = new Map<string, DivergenceLabels>();
  constructor(readonly gauge: Gauge<keyof DivergenceLabels>) {}

  set(labels: DivergenceLabels, v: number): void {
    this.series.set(JSON.stringify([labels.kind, labels.table, labels.check]), {
      kind: labels.kind,
      table: labels.table,
      check: labels.check,
    });
    this.gauge.set(labels, v);
  }

  /** Removes the rollout series of these tables. */
  forget(tables: string[]): void {
    const gone = new Set(tables);
    for (const [key, labels] of this.series) {
      if (labels.kind !== 'rollout' || !gone.has(labels.table)) continue;
      this.gauge.remove(labels);
      this.series.delete(key);
    }
  }
}

/** The throttle's gauges: one series per backfill (table, name), set by its probe. */
function controlMetrics(registry: Registry): ControlMetrics {
  const run = ['table', 'name'] as const;
  return {
    latencyBudgetSeconds: new Gauge({
      name: 'stagefill_latency_budget_seconds',
      help: "A backfill's latency budget: the probe's p99 it keeps under (resolved from p99Ratio once the baseline is measured)",
      labelNames: run,
      registers: [registry],
    }),
    probeLatencySeconds: new Gauge({
      name: 'stagefill_probe_latency_seconds',
      help: "The latency probe's p50 and p99 over the controller's window (2 s)",
      labelNames: [...run, 'quantile'] as const,
      registers: [registry],
    }),
    throttleRowsPerSecond: new Gauge({
      name: 'stagefill_throttle_rows_per_second',
      help: 'Row rate the controller allows (0 while holding, -1 for no limit)',
      labelNames: run,
      registers: [registry],
    }),
    throttleLanes: new Gauge({
      name: 'stagefill_throttle_lanes',
      help: 'Lanes the controller lets work (0 while holding)',
      labelNames: run,
      registers: [registry],
    }),
    throttleChunkSize: new Gauge({
      name: 'stagefill_throttle_chunk_size',
      help: 'Chunk size the controller sets',
      labelNames: run,
      registers: [registry],
    }),
    throttleHeld: new Gauge({
      name: 'stagefill_throttle_held',
      help: 'The controller holds the backfill (1) for this cause: budget, replica_lag, replica_missing, baseline, probe_stale',
      labelNames: [...run, 'cause'] as const,
      registers: [registry],
    }),
    throttleHeldSeconds: new Counter({
      name: 'stagefill_throttle_held_seconds_total',
      help: 'Time the controller held the backfill, by cause',
      labelNames: [...run, 'cause'] as const,
      registers: [registry],
    }),
    replicaLagSeconds: new Gauge({
      name: 'stagefill_replica_lag_seconds',
      help: 'Replay lag of each streaming replica as the probe computes it from the primary (-1: the replica is missing)',
      labelNames: [...run, 'replica'] as const,
      registers: [registry],
    }),
    probeStatements: new Counter({
      name: 'stagefill_probe_statements_total',
      help: "The latency probe's own statements (its load on the database)",
      labelNames: run,
      registers: [registry],
    }),
    probeSeconds: new Counter({
      name: 'stagefill_probe_seconds_total',
      help: "Time the latency probe's statements took",
      labelNames: run,
      registers: [registry],
    }),
    latencyBaselineSeconds: new Gauge({
      name: 'stagefill_latency_baseline_seconds',
      help: "The probe's p99 without the backfill that a p99Ratio budget is a multiple of (refreshed in off-windows)",
      labelNames: run,
      registers: [registry],
    }),
    latencyBaselineAgeSeconds: new Gauge({
      name: 'stagefill_latency_baseline_age_seconds',
      help: 'Time since the last window without the backfill fed the baseline',
      labelNames: run,
      registers: [registry],
    }),
    baselineWindows: new Counter({
      name: 'stagefill_baseline_windows_total',
      help: 'Off-windows the probe took to refresh the baseline (the backfill holds in each)',
      labelNames: run,
      registers: [registry],
    }),
  };
}

/** The backlog gauges' source for a worker: its own pool, one short query per scrape. */
export function backlogFromPool(db: Queryable): BacklogSource {
  return () => openBackfillBacklog(db);
}

/** Serves /metrics: stagefill's registry, then whatever `extra` returns (the SDK's exporter). */
export function serveMetrics(metrics: Metrics, port: number, extra?: () => Promise<string>): Promise<http.Server> {
  const server = http.createServer(async (req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    try {
      const own = await metrics.registry.metrics();
      const sdk = extra ? await extra().catch(() => '') : '';
      res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(own + '\n' + sdk);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
  return new Promise((resolve) => server.listen(port, '0.0.0.0', () => resolve(server)));
}
