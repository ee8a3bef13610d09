/**
 * What the throttle probe (activities/backfill/probe.ts) shows on /metrics:
 * the budget, the probe's latency, the settings decided, holds by cause,
 * replica lag and the baseline. worker/metrics.ts provides the gauges.
 */
import type { ControlDecision } from '../../core/backfill/throttle-control';
import type { BaselineState } from '../../core/backfill/throttle-baseline';

type Labels = { table: string; name: string };

/** The throttle's gauges and counters; worker/metrics.ts provides them beside the activity metrics. */
export interface ControlMetrics {
  latencyBudgetSeconds: { set(labels: Labels, v: number): void };
  probeLatencySeconds: { set(labels: Labels & { quantile: string }, v: number): void };
  throttleRowsPerSecond: { set(labels: Labels, v: number): void };
  throttleLanes: { set(labels: Labels, v: number): void };
  throttleChunkSize: { set(labels: Labels, v: number): void };
  throttleHeld: { set(labels: Labels & { cause: string }, v: number): void };
  throttleHeldSeconds: { inc(labels: Labels & { cause: string }, v: number): void };
  replicaLagSeconds: { set(labels: Labels & { replica: string }, v: number): void };
  latencyBaselineSeconds: { set(labels: Labels, v: number): void };
  latencyBaselineAgeSeconds: { set(labels: Labels, v: number): void };
  baselineWindows: { inc(labels: Labels, v?: number): void };
  probeStatements: { inc(labels: Labels, v?: number): void };
  probeSeconds: { inc(labels: Labels, v: number): void };
}

export const HOLD_CAUSES = ['budget', 'replica_lag', 'replica_missing', 'baseline', 'probe_stale'] as const;

/** A decision on the gauges (none without them: tests may pass fewer metrics). */
export function reportDecision(
  cm: Partial<ControlMetrics> | undefined,
  labels: Labels,
  d: ControlDecision,
  budgetP99Ms: number | undefined,
  base: BaselineState | undefined,
): void {
  if (!cm?.throttleLanes) return;
  if (budgetP99Ms !== undefined) cm.latencyBudgetSeconds!.set(labels, budgetP99Ms / 1000);
  if (d.p50Ms !== undefined) cm.probeLatencySeconds!.set({ ...labels, quantile: '0.5' }, d.p50Ms / 1000);
  if (d.p99Ms !== undefined) cm.probeLatencySeconds!.set({ ...labels, quantile: '0.99' }, d.p99Ms / 1000);
  cm.throttleRowsPerSecond!.set(labels, d.hold ? 0 : (d.rowsPerSecond ?? -1));
  cm.throttleLanes.set(labels, d.hold ? 0 : d.lanes);
  cm.throttleChunkSize!.set(labels, d.chunkSize);
  for (const cause of HOLD_CAUSES) cm.throttleHeld!.set({ ...labels, cause }, d.hold && d.holdCause === cause ? 1 : 0);
  for (const r of d.replicas ?? []) cm.replicaLagSeconds!.set({ ...labels, replica: r.name }, r.lagMs === null ? -1 : r.lagMs / 1000);
  if (base && cm.latencyBaselineSeconds) {
    cm.latencyBaselineSeconds.set(labels, base.baselineP99Ms / 1000);
    cm.latencyBaselineAgeSeconds!.set(labels, Math.max(0, Date.now() - base.at) / 1000);
  }
}

/** No probe, no hold to report: a paused or finished backfill must not look held on the dashboard. */
export function clearHolds(cm: Partial<ControlMetrics> | undefined, labels: Labels): void {
  for (const cause of HOLD_CAUSES) cm?.throttleHeld?.set({ ...labels, cause }, 0);
}
