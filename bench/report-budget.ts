/**
 * The latency-budget section of the benchmark's page (bench/report.ts renders
 * the rest): the sweep and its frontier, each budget's rounds against the
 * fastest fixed setting that kept it, the paired verdict, the load step.
 */
import type { BudgetResults } from './budget-results';
import { bestBudget, fastestWithin, frontier, budgetWallMs, budgetPairedVerdict, pairedFastestWithin } from './budget-results';
import { PAIRED_WINDOWS } from './budget';
import { shareWithin, PAIRED_MIN_SHARE } from './paired-windows';
import { s, x, ms, pct, table } from './format';
import type { BenchResults } from './results';

export function renderBudget(r: BenchResults, b: BudgetResults): string[] {
  const out: string[] = [];
  const ratio = (p99: number) => x(p99 / b.baselineP99);
  out.push(
    `### Latency budget: under \`pgbench -c ${r.settings.loadClients} -R ${r.settings.loadRate}\`, no-backfill p99 ${ms(b.baselineP99)} ms`,
    '',
  );
  if (b.baselineWindowMs) {
    const w = b.baselineWindowP99s ?? [];
    out.push(
      `The no-backfill p99 is the load's alone over ${s(b.baselineWindowMs)} s, measured just before the sweep` +
        (w.length ? `; its p99 in each 10 s of that minute: ${w.map((v) => ms(v)).join(', ')} ms, the load's own swing.` : '.'),
      '',
    );
  }
  if (b.sweep.length) {
    const front = new Set(frontier(b).map((p) => p.id));
    out.push(
      'Fixed settings (stagefill without a budget), one run each, fastest first; ★ marks the frontier: no faster setting had a lower load p99.',
      '',
      table(
        [
          'setting (chunk × lanes, rate)',
          'wall s',
          'load p99 ms',
          'p99 × no-backfill',
          'frontier',
          'paired: on/off p99 (windows; other load, cores)',
        ],
        [...b.sweep]
          .sort((p, q) => p.fill.wallMs - q.fill.wallMs)
          .map((p) => [
            p.title,
            s(p.fill.wallMs),
            ms(p.latency.p99),
            ratio(p.latency.p99),
            front.has(p.id) ? '★' : '',
            p.paired
              ? `${x(p.paired.pooledRatio)} (${p.paired.windows.length}; ${p.paired.windows.map((w) => (w.otherCores === undefined ? '?' : w.otherCores.toFixed(2))).join(', ')})`
              : '',
          ]),
      ),
      '',
    );
  }
  if (b.budgets.length) {
    out.push(
      table(
        [
          'budget',
          b.probeBaselineMs
            ? `stagefill wall s after its probe's ${s(b.probeBaselineMs)} s baseline (rounds)`
            : 'stagefill wall s (rounds)',
          'load p99 ms (its round)',
          'p99 × no-backfill',
          'fastest fixed setting within the budget',
          'its wall s',
          'wall × it',
        ],
        b.budgets.map((g) => {
          const run = bestBudget(b, g.ratio);
          const fixed = fastestWithin(b, g.ratio);
          return [
            `${g.ratio}×`,
            `${run ? s(budgetWallMs(b, run)) : ''} (${[...g.rounds.map((x) => s(budgetWallMs(b, x))), ...(g.unfinished ?? []).map((u) => `r${u.round} unfinished`)].join(', ')})`,
            run ? ms(run.latency.p99) : '',
            run ? ratio(run.latency.p99) : '',
            fixed ? fixed.title : b.sweep.length ? 'none kept it' : 'no sweep in this run',
            fixed ? s(fixed.fill.wallMs) : '',
            run && fixed ? x(budgetWallMs(b, run) / fixed.fill.wallMs) : '',
          ];
        }),
      ),
      '',
      "The budget is `throttle.latency.p99Ratio`, relative to the p99 stagefill's probe measures before the first chunk (`throttle.latency.baselineMs`); the probe is the load's own transaction (`throttle.latency.probe`, a list of statements: see `loadProbe` in bench/budget.ts). The load's p99 is pgbench's, as everywhere on this page, counted from the end of the probe's baseline.",
      '',
    );
    out.push(...renderBudgetRounds(b));
    out.push(...renderPaired(b, r.settings.noisyCores));
  }
  if (b.step) {
    const st = b.step;
    out.push(
      `Load step: budget ${st.ratio}×, the load doubled (a second \`pgbench -R ${st.baseRate}\`) ${s(st.stepAtMs)} s into a ${s(st.wallMs)} s backfill. p99 per 10 s window:`,
      '',
      table(
        ['window (s from start)', 'load p99 ms', 'p99 × no-backfill', 'txns'],
        st.windows.map((w) => [
          `${(w.fromMs / 1000).toFixed(0)}–${((w.fromMs + 10_000) / 1000).toFixed(0)}${w.fromMs + 10_000 > st.stepAtMs && w.fromMs <= st.stepAtMs ? ' (step)' : ''}`,
          ms(w.p99),
          ratio(w.p99),
          String(w.transactions),
        ]),
      ),
      '',
      '![rate and load latency over the load step](budget-load-step.svg)',
      '',
    );
  }
  return out;
}

/**
 * The paired verdict: every budgeted round's on-windows against the
 * off-windows beside them (pgbench's per-transaction log), the other load on
 * the host in each window, and per budget the verdict against the fastest
 * fixed setting that kept it by the same measure.
 */
export function renderPaired(b: BudgetResults, noisyCores: number | undefined): string[] {
  const rounds = b.budgets.flatMap((g) => g.rounds.flatMap((r) => (r.paired ? [{ ...r, paired: r.paired, ratio: g.ratio }] : [])));
  if (!rounds.length) return [];
  const cell = (v: number | undefined) => (v === undefined ? '?' : v.toFixed(2));
  const W = PAIRED_WINDOWS;
  const out: string[] = [
    `**Paired windows.** Each budgeted round (and each fixed setting) ran with the load alone for ${s(W.beforeMs)} s just before its first chunk and ${s(W.afterMs)} s after its end (once the load's queue had drained), and the controller's own off-windows in between count as off-windows too; the rest of the run is cut into on-windows of ${s(W.onMs)} s. Each on-window's load p99 (pgbench's per-transaction log) is held against the p99 of the off-windows just before and after it together, so a drift of the host moves both sides. Other load: cores' worth of CPU not used by the benchmark's own processes (PostgreSQL, Temporal, the worker, pgbench), steal included, from /proc/stat each second; windows over ${noisyCores ?? '?'} cores are counted as noisy and shown, and still judged.`,
    '',
    table(
      [
        'budget',
        'round',
        'throttle memory offered (the controller uses it only if its budget was as tight)',
        'wall s',
        'on-windows',
        'within budget × neighbours',
        'quiet ones within',
        'pooled on/off p99',
        'on-window ratios (other load, cores)',
        'off-window p99 ms (other load, cores)',
      ],
      rounds
        .sort((p, q) => p.ratio - q.ratio || p.round - q.round)
        .map((r) => [
          `${r.ratio}×`,
          String(r.round),
          r.fromMemory
            ? `memory: ${r.fromMemory.lanes} × ${r.fromMemory.chunkSize}${r.fromMemory.rowsPerSecond ? ` ≤ ${Math.round(r.fromMemory.rowsPerSecond)} rows/s` : ''}`
            : 'cold',
          s(budgetWallMs(b, r)),
          String(r.paired.windows.length),
          pct(shareWithin(r.paired.windows, r.ratio)),
          Number.isNaN(shareWithin(r.paired.windows, r.ratio, true)) ? 'none quiet' : pct(shareWithin(r.paired.windows, r.ratio, true)),
          x(r.paired.pooledRatio),
          r.paired.windows.map((w) => `${x(w.ratio)}${w.isNoisy ? ' ⚠' : ''} (${cell(w.otherCores)})`).join(', '),
          r.paired.offWindows.map((w) => `${ms(w.p99)} (${cell(w.otherCores)})`).join(', '),
        ]),
    ),
    '',
    `Per budget, over its rounds (target: ≥ ${pct(PAIRED_MIN_SHARE)} of on-windows within, the worst round's pooled ratio within the budget, mean wall ≤ 1.25× the fastest fixed setting that kept the budget by the same paired measure):`,
    '',
    table(
      [
        'budget',
        'on-windows',
        'within',
        'noisy (quiet ones within)',
        'worst pooled on/off p99',
        'paired frontier',
        'its wall s',
        'mean wall × it',
        'verdict',
      ],
      b.budgets.map((g) => {
        const v = budgetPairedVerdict(b, g.ratio);
        const f = pairedFastestWithin(b, g.ratio);
        return [
          `${g.ratio}×`,
          String(v.windows),
          Number.isNaN(v.withinShare) ? 'n/a' : pct(v.withinShare),
          `${v.noisyWindows} (${Number.isNaN(v.quietWithinShare) ? 'none quiet' : pct(v.quietWithinShare)})`,
          x(v.worstPooledRatio),
          f ? f.title : b.sweep.length ? 'none kept it' : 'no sweep',
          f ? s(f.fill.wallMs) : '',
          x(v.wallRatio),
          `${v.isKept ? 'kept' : 'not kept'}${f ? (v.isFastEnough ? ', fast enough' : ', too slow') : ''}${(g.unfinished ?? []).length ? `, ${(g.unfinished ?? []).length} round(s) unfinished` : ''}`,
        ];
      }),
    ),
    '',
  ];
  return out;
}

/**
 * Every budgeted round beside the load by itself just before it: the 30 s of
 * the probe's baseline, when no chunk ran. The budget is a multiple of the
 * no-backfill p99 measured once before the sweep; when the load alone has
 * moved since, this is where it shows.
 */
export function renderBudgetRounds(b: BudgetResults): string[] {
  const rows = b.budgets.flatMap((g) => [
    ...g.rounds.map((r) => ({ ...r, ratio: g.ratio, wall: s(budgetWallMs(b, r)) })),
    ...(g.unfinished ?? []).map((u) => ({ ...u, ratio: g.ratio, wall: 'unfinished' })),
  ]);
  if (!rows.some((r) => r.before)) return [];
  const cell = (v: number | undefined, f: (n: number) => string) => (v === undefined || Number.isNaN(v) ? '' : f(v));
  return [
    `Every budgeted round: the load's p99 by itself in the ${s(b.probeBaselineMs ?? 0)} s before the first chunk (the probe's baseline), then while the backfill ran.`,
    '',
    table(
      [
        'budget',
        'round',
        'wall s',
        'load p99 before ms',
        'load p99 during ms',
        'during × before',
        'during × no-backfill',
        'other load (cores)',
        'host steal (cores)',
      ],
      rows
        .sort((p, q) => p.ratio - q.ratio || p.round - q.round)
        .map((r) => [
          `${r.ratio}×`,
          String(r.round),
          r.wall,
          cell(r.before?.p99, ms),
          cell(r.latency?.p99, ms),
          r.before && r.latency ? x(r.latency.p99 / r.before.p99) : '',
          cell(r.latency?.p99, (v) => x(v / b.baselineP99)),
          cell(r.otherCores, (v) => v.toFixed(2)),
          cell(r.stealCores, (v) => v.toFixed(2)),
        ]),
    ),
    '',
  ];
}
