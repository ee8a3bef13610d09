/**
 * The throttle's rules, pure: the settings a run starts with, how a
 * `setThrottle` update changes them (within core/common/throttle-limits.ts),
 * and how `targetChunkMs` resizes chunks. Used by workflows/ (settings,
 * updates) and activities/ (chunk sizing).
 */

import { hasSecondStatement } from '../common/text';
import { THROTTLE_LIMITS, PROBE_STATEMENT, PROBE_TRANSACTION_MAX } from '../common/throttle-limits';

export type ReplicaMissingPolicy = 'hold' | 'ignore';

/** A latency budget: one of `p99Ms` or `p99Ratio`; `probe` replaces the default primary-key lookup. */
export interface LatencyBudget {
  p99Ms?: number;
  p99Ratio?: number;
  /**
   * What the probe times; default: a lookup on the backfill's key. One query,
   * or a list of statements run as one transaction and timed from BEGIN to
   * COMMIT, like a transaction of the service (writes included: its row locks
   * and its commit's WAL flush are what a backfill makes live writes wait on).
   */
  probe?: string | string[];
  /** Milliseconds between two probe statements. */
  probeEveryMs?: number;
  /** With p99Ratio: how long the baseline is measured before the first chunk (ms); longer for a load whose latency swings. */
  baselineMs?: number;
  /**
   * With p99Ratio: the baseline is measured again while the backfill runs, in
   * off-windows of `holdMs` every `everyMs` in which the backfill holds
   * (defaults in core/backfill/throttle-control.ts, BASELINE_REFRESH); false: measured once.
   */
  refresh?: BaselineRefresh | false;
}

/** Off-windows that keep a p99Ratio budget's baseline current; either field may be left to its default. */
export interface BaselineRefresh {
  everyMs?: number;
  holdMs?: number;
}

export interface ThrottleSettings {
  chunkSize: number;
  minChunkSize: number;
  maxChunkSize: number;
  parallelism: number;
  maxRowsPerSecond?: number;
  targetChunkMs?: number;
  /** Keep the probe's p99 within this; the controller sets rate, lanes and chunk size. */
  latency?: LatencyBudget;
  /** Hold while a streaming replica replays more than this far behind. */
  maxReplicaLagMs?: number;
  /** A replica that disappears from pg_stat_replication holds the backfill ('hold', default) or is only reported. */
  onReplicaMissing?: ReplicaMissingPolicy;
}

export interface ThrottleChange {
  chunkSize?: number;
  maxRowsPerSecond?: number | null;
  targetChunkMs?: number | null;
  parallelism?: number;
  /** A new budget, or null to drop it. */
  latency?: LatencyBudget | null;
  maxReplicaLagMs?: number | null;
  onReplicaMissing?: ReplicaMissingPolicy;
}

/** The throttle part of a backfill spec, as the schema leaves it (defaults applied). */
export interface ThrottleSpec {
  maxRowsPerSecond?: number;
  targetChunkMs?: number;
  minChunkSize?: number;
  maxChunkSize?: number;
  latency?: LatencyBudget;
  maxReplicaLagMs?: number;
  onReplicaMissing?: ReplicaMissingPolicy;
  /** backend_flush_after of the backfill's sessions, kB; THROTTLE_DEFAULTS.flushAfterKb when absent, 0: the server's. */
  flushAfterKb?: number;
}

/** The settings a run starts with: the spec's, with chunk bounds of a tenth and ten times the chunk size. */
export function initialThrottle(spec: { chunkSize: number; parallelism: number; throttle?: ThrottleSpec }): ThrottleSettings {
  const t = spec.throttle ?? {};
  const settings: ThrottleSettings = {
    chunkSize: spec.chunkSize,
    minChunkSize: t.minChunkSize ?? Math.max(1, Math.floor(spec.chunkSize / 10)),
    maxChunkSize: t.maxChunkSize ?? spec.chunkSize * 10,
    parallelism: spec.parallelism,
    maxRowsPerSecond: t.maxRowsPerSecond,
    targetChunkMs: t.targetChunkMs,
  };
  // only when set: a run without them carries exactly the fields it always did
  if (t.latency) settings.latency = t.latency;
  if (t.maxReplicaLagMs !== undefined) settings.maxReplicaLagMs = t.maxReplicaLagMs;
  if (t.onReplicaMissing !== undefined) settings.onReplicaMissing = t.onReplicaMissing;
  return settings;
}

const CHANGE_FIELDS = [
  'chunkSize',
  'maxRowsPerSecond',
  'targetChunkMs',
  'parallelism',
  'latency',
  'maxReplicaLagMs',
  'onReplicaMissing',
] as const;
const LATENCY_FIELDS = ['p99Ms', 'p99Ratio', 'probe', 'probeEveryMs', 'baselineMs', 'refresh'] as const;

const isSet = (v: unknown) => v !== undefined && v !== null;

function integerWithin(where: string, v: unknown, { min, max }: { min: number; max: number }): void {
  if (!isSet(v)) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new Error(`${where}: expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
}

function numberWithin(where: string, v: unknown, { min, max }: { min: number; max: number }): void {
  if (!isSet(v)) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    throw new Error(`${where}: expected a number from ${min} to ${max}, got ${JSON.stringify(v)}`);
}

/** A latency budget is valid: exactly one of p99Ms and p99Ratio, within their limits. Throws naming the field. */
export function validateLatencyBudget(where: string, b: unknown): void {
  if (typeof b !== 'object' || b === null || Array.isArray(b))
    throw new Error(`${where}: expected an object such as {"p99Ms": 5} or {"p99Ratio": 2}`);
  for (const k of Object.keys(b)) {
    if (!(LATENCY_FIELDS as readonly string[]).includes(k))
      throw new Error(`${where}: unknown field "${k}"; allowed: ${LATENCY_FIELDS.join(', ')}`);
  }
  const l = b as LatencyBudget;
  if (isSet(l.p99Ms) === isSet(l.p99Ratio))
    throw new Error(`${where}: give exactly one of p99Ms (milliseconds) or p99Ratio (times the p99 measured before the first chunk)`);
  numberWithin(`${where}.p99Ms`, l.p99Ms, THROTTLE_LIMITS.p99Ms);
  numberWithin(`${where}.p99Ratio`, l.p99Ratio, THROTTLE_LIMITS.p99Ratio);
  integerWithin(`${where}.probeEveryMs`, l.probeEveryMs, THROTTLE_LIMITS.probeEveryMs);
  integerWithin(`${where}.baselineMs`, l.baselineMs, THROTTLE_LIMITS.baselineMs);
  if (isSet(l.refresh)) validateRefresh(`${where}.refresh`, l.refresh);
  if (!isSet(l.probe)) return;
  if (Array.isArray(l.probe)) {
    if (l.probe.length < 1 || l.probe.length > PROBE_TRANSACTION_MAX)
      throw new Error(`${where}.probe: a transaction of 1 to ${PROBE_TRANSACTION_MAX} statements, got ${l.probe.length}`);
    l.probe.forEach((st, i) => {
      if (typeof st !== 'string' || !PROBE_STATEMENT.test(st))
        throw new Error(`${where}.probe[${i}]: expected SELECT, WITH, VALUES, INSERT, UPDATE or DELETE, got ${JSON.stringify(st)}`);
      if (hasSecondStatement(st)) throw new Error(`${where}.probe[${i}]: one statement per list item; split ${JSON.stringify(st)} in two`);
    });
  } else if (typeof l.probe !== 'string' || !/^\s*(select|with|values)\b/i.test(l.probe)) {
    throw new Error(
      `${where}.probe: expected a query (SELECT, WITH or VALUES), or a list of statements run as one transaction, got ${JSON.stringify(l.probe)}`,
    );
  } else if (hasSecondStatement(l.probe)) {
    throw new Error(`${where}.probe: a single query; for a transaction of several statements give a list, one statement each`);
  }
}

/** `latency.refresh`: false, or {everyMs, holdMs} within their limits, the hold at most half the period. Throws naming the field. */
function validateRefresh(where: string, r: unknown): void {
  if (r === false) return;
  if (typeof r !== 'object' || r === null || Array.isArray(r))
    throw new Error(`${where}: expected false (measure the baseline once) or an object such as {"everyMs": 90000, "holdMs": 6000}`);
  for (const k of Object.keys(r)) {
    if (k !== 'everyMs' && k !== 'holdMs') throw new Error(`${where}: unknown field "${k}"; allowed: everyMs, holdMs`);
  }
  const { everyMs, holdMs } = r as BaselineRefresh;
  integerWithin(`${where}.everyMs`, everyMs, THROTTLE_LIMITS.refreshEveryMs);
  integerWithin(`${where}.holdMs`, holdMs, THROTTLE_LIMITS.refreshHoldMs);
  if (isSet(everyMs) && isSet(holdMs) && holdMs * 2 > everyMs)
    throw new Error(`${where}.holdMs: at most half of everyMs (${everyMs} ms), got ${holdMs}; hold for less or refresh less often`);
}

/** The `setThrottle` update's validator: rejects a bad payload before it reaches history, naming the field. */
export function validateThrottleChange(change: ThrottleChange): void {
  if (typeof change !== 'object' || change === null) throw new Error('setThrottle takes an object such as {"chunkSize": 2000}');
  for (const k of Object.keys(change)) {
    if (!(CHANGE_FIELDS as readonly string[]).includes(k))
      throw new Error(`setThrottle: unknown field "${k}"; allowed: ${CHANGE_FIELDS.join(', ')}`);
  }
  // setThrottle has always taken any targetChunkMs from 1 (the spec asks at least 10)
  integerWithin('setThrottle.chunkSize', change.chunkSize, THROTTLE_LIMITS.chunkSize);
  integerWithin('setThrottle.parallelism', change.parallelism, THROTTLE_LIMITS.parallelism);
  integerWithin('setThrottle.targetChunkMs', change.targetChunkMs, { min: 1, max: THROTTLE_LIMITS.targetChunkMs.max });
  const r = change.maxRowsPerSecond;
  if (isSet(r) && (typeof r !== 'number' || !(r > 0))) {
    throw new Error(`setThrottle.maxRowsPerSecond: expected a positive number or null (no limit), got ${JSON.stringify(r)}`);
  }
  if (isSet(change.latency)) validateLatencyBudget('setThrottle.latency', change.latency);
  integerWithin('setThrottle.maxReplicaLagMs', change.maxReplicaLagMs, THROTTLE_LIMITS.maxReplicaLagMs);
  const m = change.onReplicaMissing;
  if (m !== undefined && m !== 'hold' && m !== 'ignore')
    throw new Error(`setThrottle.onReplicaMissing: expected "hold" or "ignore", got ${JSON.stringify(m)}`);
}

/** The settings after a (validated) change: null drops a limit, a chunk size widens its bounds to include it. */
export function applyThrottleChange(t: ThrottleSettings, change: ThrottleChange): ThrottleSettings {
  const next = { ...t };
  if (change.chunkSize !== undefined) {
    next.chunkSize = change.chunkSize;
    next.minChunkSize = Math.min(next.minChunkSize, change.chunkSize);
    next.maxChunkSize = Math.max(next.maxChunkSize, change.chunkSize);
  }
  if (change.parallelism !== undefined) next.parallelism = change.parallelism;
  if (change.maxRowsPerSecond !== undefined) next.maxRowsPerSecond = change.maxRowsPerSecond ?? undefined;
  if (change.targetChunkMs !== undefined) next.targetChunkMs = change.targetChunkMs ?? undefined;
  if (change.latency !== undefined) {
    if (change.latency === null) delete next.latency;
    else next.latency = { ...change.latency };
  }
  if (change.maxReplicaLagMs !== undefined) {
    if (change.maxReplicaLagMs === null) delete next.maxReplicaLagMs;
    else next.maxReplicaLagMs = change.maxReplicaLagMs;
  }
  if (change.onReplicaMissing !== undefined) next.onReplicaMissing = change.onReplicaMissing;
  return next;
}

/**
 * The chunk size in force: while a latency budget or a replica-lag limit
 * steers the run (`isSteered`) and the controller has decided, its decided
 * size; else the run's own (which targetChunkMs adapts). The workflow's
 * progress and each lease read it here.
 */
export function chunkSizeInForce(own: number, decision: { chunkSize?: number } | undefined, isSteered: boolean): number {
  return isSteered && decision?.chunkSize ? decision.chunkSize : own;
}

/** Does a latency budget or a replica-lag limit steer this run (a probe runs beside its lanes)? */
export function isControlled(t: ThrottleSettings): boolean {
  return t.latency !== undefined || t.maxReplicaLagMs !== undefined;
}

/** targetChunkMs: grow or shrink the chunk toward the target, at most 2x per chunk, within bounds. */
export function adaptedChunkSize(
  t: { targetChunkMs?: number; minChunkSize: number; maxChunkSize: number },
  size: number,
  ms: number,
): number {
  const factor = Math.min(2, Math.max(0.5, t.targetChunkMs! / Math.max(1, ms)));
  return Math.round(Math.min(t.maxChunkSize, Math.max(t.minChunkSize, size * factor)));
}
