/**
 * Settings remembered per table (stagefill.throttle_memory): what kept a
 * budget on it before, and the start a budgeted run takes from them instead of
 * the slow start.
 */
import type { ControlLimits, ControlState } from './throttle-control';
import { initialControl, judgedSince } from './throttle-control';
import { capRate, chunkForRate, clamp, ms } from './throttle-moves';
import { CONTROL_TUNING } from './throttle-tuning';

/** Settings that kept a budget on this table before (stagefill.throttle_memory). */
export interface RememberedSettings {
  rowsPerSecond?: number;
  lanes: number;
  chunkSize: number;
  budgetP99Ms: number;
  p99Ms: number;
  keptAt: number;
}

/**
 * How a run starts from remembered settings: a step below them (a lane less,
 * the rate x0.7), within this run's limits; the climb finds the rest. Only
 * when they kept a budget at least as tight as this one's (a looser one says
 * nothing about a tighter) and are at most `maxAgeMs` old. From the slow
 * start one benchmark round took 35 s to climb from 40,000 to 225,000 rows/s
 * (3x budget, 2026-12-03), on a table its previous rounds had just run on.
 * Settings count as kept after a judging window without a cut (`keptForMs`):
 * with 15 s a backfill done within 15 s of its first chunk (the release after
 * the baseline counts as a cut) remembered nothing, and the benchmark's
 * fastest fixed settings take 10 s.
 */
export const MEMORY = { rateMargin: 0.7, maxAgeMs: 7 * 24 * 3_600_000, keptForMs: 5_000, rememberEveryMs: 5_000 } as const;

/** The decision a budgeted run starts from: the remembered settings a step below; undefined when none fit (the slow start). */
export function rememberedStart(
  limits: ControlLimits,
  chunkSize: number,
  m: RememberedSettings | undefined,
  budgetP99Ms: number,
  now: number,
): ControlState | undefined {
  if (!m || now - m.keptAt > MEMORY.maxAgeMs || m.budgetP99Ms > budgetP99Ms) return undefined;
  const slow = initialControl(limits, chunkSize, true, now);
  const lanes = clamp(m.lanes - 1, 1, limits.maxLanes);
  const rowsPerSecond =
    m.rowsPerSecond === undefined
      ? limits.maxRowsPerSecond
      : capRate(Math.max(limits.minRowsPerSecond, m.rowsPerSecond * MEMORY.rateMargin), limits);
  const chunk = chunkForRate(clamp(m.chunkSize, limits.minChunkSize, limits.maxChunkSize), rowsPerSecond, limits);
  return {
    ...slow,
    decision: {
      ...slow.decision,
      rowsPerSecond,
      lanes,
      chunkSize: chunk,
      reason: `starting a step below the settings that kept a ${ms(m.budgetP99Ms)} ms budget on this table (${m.lanes} lane${m.lanes === 1 ? '' : 's'} of ${m.chunkSize}-row chunks${m.rowsPerSecond === undefined ? '' : ` at ${Math.round(m.rowsPerSecond)} rows/s`})`,
    },
  };
}

/**
 * These settings are worth remembering for the table: they let the backfill
 * work, kept the budget (p99 within it, no cut) for `keptForMs`, and the p99
 * was measured at them.
 */
export function isWorthRemembering(s: ControlState, now: number): boolean {
  const d = s.decision;
  return (
    !d.hold &&
    d.budgetP99Ms !== undefined &&
    d.p99Ms !== undefined &&
    d.p99Ms <= d.budgetP99Ms &&
    (d.action === 'steady' || d.action === 'increasing') &&
    now - s.lastCutAt >= MEMORY.keptForMs &&
    now - judgedSince(s) >= CONTROL_TUNING.windowMs / 2
  );
}
