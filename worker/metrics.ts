import http from 'node:http';
import { Counter, Histogram, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Queryable } from '../db/pool';
import { openBackfillBacklog, BacklogRow } from '../db/audit';

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
      for (const b of await readBacklog()) backlogPlanned.set({ kind: 'backfill', table: b.table, name: b.name, state: b.state }, b.rowsPlanned);
    },
  });
  const backlogRemaining: Gauge<(typeof backlogLabels)[number]> = new Gauge({
    name: 'stagefill_backfill_rows_remaining',
    help: 'Rows of each unfinished backfill not yet covered by a checkpoint; with the rate of stagefill_rows_processed_total it gives the ETA',
    labelNames: backlogLabels,
    registers: [registry],
    async collect() {
      backlogRemaining.reset();
      for (const b of await readBacklog()) backlogRemaining.set({ kind: 'backfill', table: b.table, name: b.name, state: b.state }, Math.max(0, b.rowsPlanned - b.rowsDone));
    },
  });
  return {
    registry,
    rowsProcessed: new Counter({ name: 'stagefill_rows_processed_total', help: 'Rows written by committed chunks', labelNames, registers: [registry] }),
    chunksCommitted: new Counter({ name: 'stagefill_chunks_committed_total', help: 'Chunks committed with their checkpoint', labelNames, registers: [registry] }),
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
    gateResults: new Counter({
      name: 'stagefill_gate_results_total',
      help: 'Gate and soak check results',
      labelNames: ['kind', 'table', 'check', 'result'] as const,
      registers: [registry],
    }),
    gateDivergence: new Gauge({
      name: 'stagefill_gate_divergence',
      help: 'Last measured deviation of a check from its expectation (0 = within bounds)',
      labelNames: ['kind', 'table', 'check'] as const,
      registers: [registry],
    }),
    rollbacks: new Counter({ name: 'stagefill_rollbacks_total', help: 'Rollouts rolled back', labelNames, registers: [registry] }),
    backlogRemaining,
    backlogPlanned,
    /** Feeds the backlog gauges; the worker passes its pool (see backlogFromPool). */
    setBacklogSource(source: BacklogSource | undefined) {
      backlogSource = source;
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

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
