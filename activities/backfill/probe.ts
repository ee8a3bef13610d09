/**
 * The latency/replica-lag throttle's probe: one long-running activity per
 * controlled backfill round, on a connection of its own. It times a short
 * statement at a steady rate (a lookup on the backfill's key, or the spec's
 * `throttle.latency.probe`), reads the replicas' replay positions, runs the
 * controller (core/backfill/throttle-control.ts) about twice a second and writes its
 * decision to the backfill's control row, where the leases read it. Nothing
 * of this per-second loop reaches the workflow's history: the workflow sees
 * the decision in each lease's result.
 */
import { Context } from '@temporalio/activity';
import type { ActivityDeps, ActivityMetrics } from './index';
import * as health from '../../db/backfill/health';
import type { ControlDecision, ControlLimits, ControlState } from '../../core/backfill/throttle-control';
import { controlStep, judgedSince, initialControl } from '../../core/backfill/throttle-control';
import type { BaselineState } from '../../core/backfill/throttle-baseline';
import { firstBaseline, isRefreshDue, refreshBaseline, refreshPlan, BASELINE_REFRESH } from '../../core/backfill/throttle-baseline';
import { CONTROL_TUNING } from '../../core/backfill/throttle-tuning';
import { rememberedStart, isWorthRemembering, MEMORY } from '../../core/backfill/throttle-memory';
import { observedRate, baselineP99, highestWindowP99, quantile } from '../../core/backfill/throttle-samples';
import { ms } from '../../core/backfill/throttle-moves';
import { ReplicaLagTracker } from '../../core/backfill/replica-lag';
import type { StatementCounters } from '../../core/backfill/traffic-latency';
import { resolveBudget, statementsP99 } from '../../core/backfill/traffic-latency';
import type { ThrottleSettings } from '../../core/backfill/throttle';
import type { ControlMetrics } from './probe-metrics';
import { clearHolds, reportDecision } from './probe-metrics';
import type { ProbeTarget } from './probe-statements';
import { probeStatements } from './probe-statements';
import { replicaWatch } from './probe-replicas';

export interface ProbeInput extends ProbeTarget {
  backfillId: number;
  generation: number;
  name: string;
  throttle: ThrottleSettings;
  /** Controller steps this often (ms). */
  tickMs?: number;
  /** How long the baseline is measured before the first chunk (ms), for p99Ratio; 10 s (500 statements at the default pace) by default. */
  baselineMs?: number;
  /** Return after this long; the workflow starts the next probe (keeps one activity from living for days). */
  maxRunMs?: number;
}

export interface ProbeResult {
  ticks: number;
  probes: number;
  decision?: ControlDecision;
}

interface StoredState {
  control: ControlState;
  /** The highest p99 of a judging window while the baseline was measured. */
  noiseP99Ms?: number;
  /** The baseline and its off-windows (absent in rows written before they existed: rebuilt from baseline_p99_ms). */
  baseline?: BaselineState;
  /** During an off-window: the controller's state before it, which a probe restarted meanwhile goes on from. */
  beforeWindow?: ControlState;
}

const DEFAULT_PROBE_EVERY_MS = 20;
/**
 * The baseline before the first chunk: two judging windows at least. A load
 * that commits stalls now and then (a WAL flush behind another's); 4 s caught
 * none of that in one run and a 9.5 ms p99 in the next, and a budget a ratio
 * of the first crawled under the load's own stalls.
 */
const BASELINE_MS = 10_000;

export function controlLimits(t: ThrottleSettings): ControlLimits {
  return {
    maxLanes: t.parallelism,
    minChunkSize: t.minChunkSize,
    maxChunkSize: t.maxChunkSize,
    maxRowsPerSecond: t.maxRowsPerSecond,
    minRowsPerSecond: Math.max(1, t.minChunkSize),
  };
}

export function createProbeActivities({ pool, logger, metrics }: ActivityDeps) {
  // the worker's metrics object carries the throttle's gauges too (worker/metrics.ts); tests may pass fewer
  const cm: (ActivityMetrics & Partial<ControlMetrics>) | undefined = metrics;

  async function runThrottleProbe(input: ProbeInput): Promise<ProbeResult> {
    const ctx = Context.current();
    const started = Date.now();
    const t = input.throttle;
    const labels = { table: input.table, name: input.name };
    const everyMs = t.latency?.probeEveryMs ?? DEFAULT_PROBE_EVERY_MS;
    const tickMs = input.tickMs ?? 500;
    const limits = controlLimits(t);
    const stored = await health.readControl(pool, input.backfillId);
    const sameGeneration = stored?.generation === input.generation;
    let baseline: number | undefined = stored?.baseline_p99_ms ?? undefined;
    const storedState = stored?.state as StoredState | null | undefined;
    // a probe restarted during an off-window goes on from the settings before it, not from the window's hold
    const prior = sameGeneration ? (storedState?.beforeWindow ?? storedState?.control) : undefined;
    let noise: number | undefined = storedState?.noiseP99Ms;
    let base: BaselineState | undefined =
      storedState?.baseline ?? (baseline === undefined ? undefined : firstBaseline(baseline, noise, started));
    const refresh = refreshPlan(t.latency);
    // a new run under a budget starts from what last kept a budget on this table (a hint: unreadable, the slow start)
    const memory =
      prior || !t.latency
        ? undefined
        : await health.readThrottleMemory(pool, input.table).catch((err) => {
            logger.warn({ table: input.table, err: (err as Error).message }, 'throttle memory could not be read');
            return undefined;
          });
    let rememberedAt = 0;
    let control: ControlState = prior ?? initialControl(limits, t.chunkSize, t.latency !== undefined, started);
    const lag = new ReplicaLagTracker(stored?.replicas_seen ?? []);
    const statements = probeStatements(pool, ctx, input, t.latency, everyMs, (tookMs) => {
      cm?.probeStatements?.inc(labels);
      cm?.probeSeconds?.inc(labels, tookMs / 1000);
    });
    const samples = statements.samples;
    const replicasAt = replicaWatch(pool, logger, lag, {
      table: input.table,
      backfill: input.name,
      workflowId: ctx.info.workflowExecution?.workflowId ?? '',
      onReplicaMissing: t.onReplicaMissing,
    });
    let ticks = 0;
    const rowsSeen: { at: number; rows: number }[] = [];

    const publish = async (c: ControlState, beforeWindow?: ControlState) => {
      await health.writeControl(pool, {
        backfillId: input.backfillId,
        generation: input.generation,
        baselineP99Ms: baseline ?? null,
        state: { control: c, noiseP99Ms: noise, baseline: base, beforeWindow } satisfies StoredState,
        replicasSeen: lag.replicasSeen(),
      });
      ctx.heartbeat({ decision: c.decision });
      reportDecision(cm, labels, c.decision, budgetNow().budgetP99Ms, base);
    };
    /** The budget now: relative to the traffic's p99 when pg_stat_statements gave one, raised out of the probe's noise. */
    const budgetNow = () =>
      resolveBudget(t.latency, { probeBaselineMs: baseline, trafficBaselineMs: base?.trafficP99Ms, noiseP99Ms: noise });
    /** pg_stat_statements' counters now (undefined without the extension); a failure to read them is no reason to stop. */
    const counters = () =>
      health.statementCounters(pool).catch((err) => {
        logger.warn({ table: input.table, backfill: input.name, err: (err as Error).message }, 'pg_stat_statements could not be read');
        return undefined;
      });
    const trafficP99 = (from: StatementCounters[] | undefined, to: StatementCounters[] | undefined) =>
      from && to ? statementsP99(from, to) : undefined;

    /** p99Ratio: the baseline before the first chunk, measured while the leases hold. */
    const measureBaseline = async (latency: NonNullable<ThrottleSettings['latency']>) => {
      const measuring: ControlState = {
        ...control,
        decision: {
          ...control.decision,
          hold: true,
          action: 'measuring',
          holdCause: 'baseline',
          reason: 'measuring the baseline p99 before the first chunk',
          at: Date.now(),
        },
      };
      await publish(measuring);
      const baselineMs = latency.baselineMs ?? input.baselineMs ?? BASELINE_MS;
      const beat = setInterval(() => ctx.heartbeat({ decision: measuring.decision }), 1000);
      let traffic: number | undefined;
      try {
        const from = await counters();
        await statements.until(Date.now() + baselineMs);
        traffic = trafficP99(from, from && (await counters()));
      } finally {
        clearInterval(beat);
      }
      baseline = baselineP99(samples, CONTROL_TUNING.windowMs) ?? 0.05;
      noise = highestWindowP99(samples, CONTROL_TUNING.windowMs);
      base = firstBaseline(baseline, noise, Date.now(), traffic);
      const resolved = budgetNow();
      const budget = resolved.budgetP99Ms;
      logger.info(
        {
          table: input.table,
          backfill: input.name,
          baselineP99Ms: baseline,
          trafficP99Ms: traffic,
          budgetReference: resolved.reference,
          noiseP99Ms: noise,
          budgetP99Ms: budget,
          samples: samples.length,
        },
        'latency baseline measured',
      );
      if (budget !== undefined && resolved.askedP99Ms !== undefined) {
        logger.warn(
          { table: input.table, backfill: input.name, budgetP99Ms: budget, askedP99Ms: resolved.askedP99Ms, noiseP99Ms: noise },
          `the latency budget (${resolved.askedP99Ms.toFixed(2)} ms of probe p99) is inside the probe's own variation: without the backfill a ${CONTROL_TUNING.windowMs / 1000}-s window reached p99 ${noise!.toFixed(2)} ms; raised to ${budget.toFixed(2)} ms, which the probe can tell from its noise; a larger throttle.latency.p99Ratio, or a probe that stands for the traffic, avoids this`,
        );
      }
      // from remembered settings it goes on from them; otherwise the first judgement starts carefully, on one lane
      if (!startFromMemory()) control = { ...control, decision: { ...control.decision, hold: true, holdCause: 'baseline' } };
    };

    /**
     * An off-window: the lanes hold (the decision published says so, the
     * controller's own state is left as it was, so they resume at the same
     * settings) while the probe measures the latency without the backfill.
     */
    const offWindow = async (plan: { everyMs: number; holdMs: number }, prev: BaselineState) => {
      const begun = Date.now();
      const d = control.decision;
      const measuring: ControlState = {
        ...control,
        decision: {
          ...d,
          hold: true,
          action: 'measuring',
          holdCause: 'baseline',
          reason: `refreshing the baseline p99 (${ms(prev.baselineP99Ms)} ms, ${Math.round((begun - prev.at) / 1000)} s old): the backfill holds ${plan.holdMs / 1000} s every ${plan.everyMs / 1000} s`,
          at: begun,
        },
      };
      // the window counts from its start: a probe restarted inside it takes the next one a period later, not at once
      const before: BaselineState = { ...prev, lastWindowAt: begun };
      base = before;
      await publish(measuring, control);
      const beat = setInterval(() => ctx.heartbeat({ decision: measuring.decision }), 1000);
      let traffic: number | undefined;
      try {
        // the traffic's statements counted from where the probe's are: past the chunks in flight
        await statements.until(begun + BASELINE_REFRESH.settleMs);
        const from = await counters();
        await statements.until(begun + plan.holdMs);
        traffic = trafficP99(from, from && (await counters()));
      } finally {
        clearInterval(beat);
      }
      base = refreshBaseline(before, samples, begun, Date.now(), traffic);
      baseline = base.baselineP99Ms;
      noise = base.noiseP99Ms;
      cm?.baselineWindows?.inc(labels);
      logger.info(
        {
          table: input.table,
          backfill: input.name,
          baselineP99Ms: baseline,
          previousP99Ms: before.baselineP99Ms,
          windowP99Ms: base.recent[base.recent.length - 1],
          windows: base.windows,
          trafficP99Ms: base.trafficP99Ms,
          budgetP99Ms: budgetNow().budgetP99Ms,
        },
        'latency baseline refreshed',
      );
      // the lanes resume at the settings in force; the window judged next starts now
      control = { ...control, resumedAt: Date.now() };
    };

    /** From the remembered settings, when they kept a budget at least as tight as this one's: true if it did. */
    const startFromMemory = (): boolean => {
      const budget = budgetNow().budgetP99Ms;
      const start = budget === undefined ? undefined : rememberedStart(limits, t.chunkSize, memory, budget, Date.now());
      if (!start) return false;
      control = start;
      logger.info({ table: input.table, backfill: input.name, ...start.decision }, `throttle: ${start.decision.reason}`);
      return true;
    };

    /** One controller step: what the probe and the replicas saw since the settings last changed, judged and published. */
    const step = async () => {
      const at = Date.now();
      for (let first = samples[0]; first && at - first.at > CONTROL_TUNING.windowMs; first = samples[0]) samples.shift();
      // the window restarts at every change: what the controller judges next is how the database does at the new settings
      const since = judgedSince(control);
      const latencies = samples.filter((s) => s.at > since).map((s) => s.ms);
      const rows = await health.rowsDone(pool, input.backfillId, input.generation);
      rowsSeen.push({ at, rows });
      for (let second = rowsSeen[1]; rowsSeen.length > 2 && second && at - second.at >= CONTROL_TUNING.windowMs; second = rowsSeen[1])
        rowsSeen.shift();
      const observed = observedRate(rowsSeen, at, since);
      const replicas = t.maxReplicaLagMs !== undefined ? await replicasAt(at) : undefined;
      const before = control.decision;
      const resolved = budgetNow();
      const budget = resolved.budgetP99Ms;
      control = controlStep(
        control,
        {
          now: at,
          budgetP99Ms: budget,
          baselineP99Ms: baseline,
          baselineAt: base?.at,
          baselineWindows: base?.windows,
          trafficP99Ms: base?.trafficP99Ms,
          budgetReference: resolved.reference,
          askedP99Ms: resolved.askedP99Ms,
          noiseP99Ms: noise,
          p50Ms: quantile(latencies, 0.5),
          p99Ms: quantile(latencies, 0.99),
          samples: latencies.length,
          overBudget: budget === undefined ? undefined : latencies.filter((v) => v > budget).length,
          observedRowsPerSecond: Math.max(0, observed),
          maxReplicaLagMs: t.maxReplicaLagMs,
          onReplicaMissing: t.onReplicaMissing,
          replicas,
        },
        limits,
      );
      ticks++;
      const d = control.decision;
      if (d.hold) cm?.throttleHeldSeconds?.inc({ ...labels, cause: d.holdCause ?? 'budget' }, tickMs / 1000);
      if (d.action !== before.action || d.hold !== before.hold || d.lanes !== before.lanes) {
        logger.info(
          {
            table: input.table,
            backfill: input.name,
            action: d.action,
            hold: d.hold,
            rate: d.rowsPerSecond,
            lanes: d.lanes,
            chunkSize: d.chunkSize,
            p99Ms: d.p99Ms,
          },
          `throttle: ${d.reason}`,
        );
      }
      await publish(control);
      if (isWorthRemembering(control, at) && at - rememberedAt >= MEMORY.rememberEveryMs) {
        rememberedAt = at;
        await health
          .rememberThrottle(pool, input.table, {
            rowsPerSecond: d.rowsPerSecond,
            lanes: d.lanes,
            chunkSize: d.chunkSize,
            budgetP99Ms: d.budgetP99Ms!,
            p99Ms: d.p99Ms!,
          })
          .catch((err) => logger.warn({ table: input.table, err: (err as Error).message }, 'throttle memory could not be written'));
      }
    };

    try {
      if (t.latency?.p99Ms !== undefined) startFromMemory();
      if (t.latency?.p99Ratio !== undefined && baseline === undefined) await measureBaseline(t.latency);
      for (;;) {
        if (ctx.cancellationSignal.aborted) break;
        const now = Date.now();
        if (input.maxRunMs !== undefined && now - started >= input.maxRunMs) break;
        await statements.until(now + tickMs);
        if (ctx.cancellationSignal.aborted) break;
        await step();
        if (refresh && base && isRefreshDue(refresh, base, Date.now()) && !ctx.cancellationSignal.aborted) await offWindow(refresh, base);
      }
    } finally {
      await statements.close();
      clearHolds(cm, labels);
    }
    return { ticks, probes: statements.count, decision: control.decision };
  }

  return { runThrottleProbe };
}

export type ProbeActivities = ReturnType<typeof createProbeActivities>;
