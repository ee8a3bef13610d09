import fs from 'node:fs';
import path from 'node:path';
import type { BudgetResults } from './budget-results';
import { bestBudget, fastestWithin, frontier, budgetWallMs, budgetPairedVerdict, pairedFastestWithin } from './budget-results';
import { PAIRED_WINDOWS } from './budget';
import { shareWithin, PAIRED_MIN_SHARE } from './paired-windows';
import { s, x, ms, pct, cores, table } from './format';
import type { BenchResults } from './results';
import { best, bestAlone, baselineP99, bestLoadRound, overheadPerChunkMs, verdicts, triggerSummary } from './results';

/** The generated part of docs/BENCHMARKS.md (and the console summary). */
export function renderResults(r: BenchResults): string {
  const out: string[] = [];
  const single = bestAlone(r, 'single');
  const bare = bestAlone(r, 'bare');
  out.push(`Run ${r.startedAt} → ${r.finishedAt ?? '?'}: \`${r.command}\``, '');
  for (const c of r.resumed ?? [])
    out.push(`Resumed ${c.at} on the same cluster (the phases above it kept, the rest run): \`${c.command}\``, '');
  out.push(
    `Machine: ${r.machine.nproc} cores (${r.machine.cpu}), ${r.machine.memoryGb.toFixed(0)} GB RAM, Linux ${r.machine.kernel}, Node ${r.machine.node}. ` +
      `${r.postgres.version.split(' on ')[0]}; ${Object.entries(r.postgres.settings)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}.`,
    '',
    `Scale ${r.scale}: ${r.rows.toLocaleString('en-US')} rows in pgbench_accounts; best of ${r.rounds} alternated rounds, \`VACUUM (ANALYZE)\`, \`CHECKPOINT\` and \`sync\` before every run. ` +
      `Chunked contenders use ${r.settings.chunkSize.toLocaleString('en-US')}-row chunks on ${r.settings.parallelism} lanes unless named otherwise. ` +
      (r.settings.flushAfterKb === undefined
        ? ''
        : r.settings.flushAfterKb > 0
          ? `stagefill's lanes and bare chunks write back every ${r.settings.flushAfterKb} kB (\`backend_flush_after\`, \`throttle.flushAfterKb\`). `
          : `stagefill's lanes and bare chunks leave \`backend_flush_after\` at the server's (\`--flush-after-kb 0\`). `) +
      (r.warmupMs !== undefined
        ? `The unmeasured warm-up fill right after \`pgbench -i\` took ${s(r.warmupMs)} s (${x(r.warmupMs / (single?.wallMs ?? NaN))} the best single UPDATE): it extends the table.`
        : ''),
    '',
  );

  if (r.alone.length) {
    out.push('### Alone', '');
    out.push(
      table(
        [
          'contender',
          'wall s (best)',
          'all rounds s',
          '× single UPDATE',
          '× bare chunks',
          'rows/s',
          'chunks',
          'lane overhead ms/chunk',
          'other load (cores)',
        ],
        r.alone.map((a) => {
          const b = best(a.runs);
          return [
            a.title,
            s(b.wallMs),
            [...(a.warmMs !== undefined ? [`(${s(a.warmMs)})`] : []), ...a.runs.map((x) => s(x.wallMs))].join(', '),
            x(b.wallMs / (single?.wallMs ?? NaN)),
            x(b.wallMs / (bare?.wallMs ?? NaN)),
            Math.round((b.rows * 1000) / b.wallMs).toLocaleString('en-US'),
            String(b.chunks),
            b.chunks > 1 ? ms(overheadPerChunkMs(b)) : '',
            cores(b.otherCores),
          ];
        }),
      ),
      '',
      'Lane overhead per chunk = (wall × lanes − Σ chunk SQL time) / chunks: the time a lane spends not running chunk SQL. ' +
        'For the plain loops chunk SQL is the UPDATE; for stagefill it is the chunk transaction up to the checkpoint write (checkpoints.duration_ms).' +
        (r.alone.some((a) => a.warmMs !== undefined)
          ? ' In brackets under all rounds: the unmeasured round 0 that comes first (`--warmup full`), run like the others.'
          : ''),
      '',
    );
    const sf = r.alone.filter((a) => a.id.startsWith('stagefill'));
    if (sf.length) {
      out.push(
        table(
          ['stagefill run', 'runs (continue-as-new)', 'history events', 'events per 1M rows', 'activeMs / wall', 'worker peak RSS MB'],
          sf.map((a) => {
            const b = best(a.runs);
            const f = b.stagefill!;
            return [
              a.title,
              String(f.runs),
              String(f.historyEvents),
              ((f.historyEvents * 1e6) / Math.max(1, b.rows)).toFixed(0),
              x(f.activeMs / b.wallMs),
              f.workerPeakRssMb.toFixed(0),
            ];
          }),
        ),
        '',
      );
    }
  }

  if (r.load.length) {
    const base = r.load.find((l) => l.id === 'none');
    out.push(`### Under load: \`pgbench -c ${r.settings.loadClients} -R ${r.settings.loadRate}\` (TPC-B-like)`, '');
    out.push(
      table(
        [
          'contender',
          'wall s',
          '× single UPDATE alone',
          'load p50 ms',
          'load p99 ms',
          'load max ms',
          'p99 × no-backfill',
          'load txns',
          'failed',
          'other load (cores)',
        ],
        r.load.map((l) => {
          const b = bestLoadRound(r, l.id)!;
          return [
            l.title,
            b.fill ? s(b.fill.wallMs) : '',
            b.fill ? x(b.fill.wallMs / (single?.wallMs ?? NaN)) : '',
            ms(b.latency.p50),
            ms(b.latency.p99),
            ms(b.latency.max),
            x(b.p99Ratio),
            String(b.latency.transactions),
            String(b.latency.failed),
            cores(b.otherCores),
          ];
        }),
      ),
      '',
      `Latency is pgbench's per-transaction log (\`-l\`), measured from each transaction's scheduled start, over the transactions scheduled while the backfill ran ` +
        `(the no-backfill load: a window as long as a stagefill run). Each backfill's row is its round with the lowest p99; "p99 × no-backfill" divides by the median ` +
        `no-backfill p99 over the rounds, whose round is the no-backfill row` +
        (base ? ` (${base.rounds.map((b) => ms(b.latency.p99)).join(', ')} ms: median ${ms(baselineP99(r))} ms).` : '.'),
      '',
    );
    out.push('<details><summary>every load round</summary>', '');
    out.push(
      table(
        ['contender', 'round', 'wall s', 'p50 ms', 'p99 ms', 'max ms', 'txns', 'other load (cores)'],
        r.load.flatMap((l) =>
          l.rounds.map((rd) => [
            l.title,
            String(rd.round),
            rd.fill ? s(rd.fill.wallMs) : '',
            ms(rd.latency.p50),
            ms(rd.latency.p99),
            ms(rd.latency.max),
            String(rd.latency.transactions),
            cores(rd.otherCores),
          ]),
        ),
      ),
      '',
      '</details>',
      '',
    );
  }

  const trig = triggerSummary(r);
  if (trig) {
    out.push(
      `### Dual-write trigger: unthrottled \`pgbench -c ${r.settings.loadClients} -T ${r.settings.triggerSeconds}\``,
      '',
      r.triggerSource,
      '',
    );
    out.push(
      table(
        [
          'round',
          'TPS without',
          'TPS with',
          'TPS ratio',
          'p99 without ms',
          'p99 with ms',
          'p99 ratio',
          'other load (cores) without / with',
        ],
        trig.pairs.map((p) => [
          String(p.o.round),
          p.o.tps.toFixed(0),
          p.w.tps.toFixed(0),
          x(p.w.tps / p.o.tps),
          ms(p.o.latency.p99),
          ms(p.w.latency.p99),
          x(p.w.latency.p99 / p.o.latency.p99),
          `${cores(p.o.otherCores)} / ${cores(p.w.otherCores)}`,
        ]),
      ),
      '',
      `Median over rounds: TPS ${x(trig.tpsRatio)}, p99 ${x(trig.p99Ratio)}.`,
      '',
    );
  }

  const keyed = (r.keys ?? []).filter((k) => k.single.length && k.stagefill.length);
  if (keyed.length) {
    out.push('### Other keys', '');
    out.push(
      'The same rows and fill on a copy of the table keyed otherwise, where chunks are cut from the index (the key `chunkSize` rows on) instead of by arithmetic. Alone, best of the rounds.',
      '',
    );
    out.push(
      table(
        ['key', 'rows', 'single UPDATE s', 'stagefill defaults s', '× single', 'chunks', 'largest chunk rows', 'other load (cores)'],
        keyed.map((k) => {
          const one = best(k.single);
          const sf = best(k.stagefill);
          return [
            k.title,
            k.rows.toLocaleString('en-US'),
            s(one.wallMs),
            s(sf.wallMs),
            x(sf.wallMs / one.wallMs),
            String(sf.chunks),
            String(sf.largestChunk ?? ''),
            cores(sf.otherCores),
          ];
        }),
      ),
      '',
    );
  }

  if (r.scales.length) {
    out.push('### Growth', '');
    out.push(
      table(
        [
          'scale',
          'rows',
          'single UPDATE s',
          'stagefill defaults s',
          '× single',
          'rows/s (stagefill)',
          'history events',
          'events per 1M rows',
          'worker peak RSS MB',
          'other load (cores)',
        ],
        r.scales.map((p) => [
          String(p.scale),
          p.rows.toLocaleString('en-US'),
          s(p.singleMs),
          s(p.stagefill.wallMs),
          x(p.stagefill.wallMs / p.singleMs),
          Math.round((p.rows * 1000) / p.stagefill.wallMs).toLocaleString('en-US'),
          String(p.stagefill.stagefill?.historyEvents ?? ''),
          (((p.stagefill.stagefill?.historyEvents ?? 0) * 1e6) / p.rows).toFixed(0),
          (p.stagefill.stagefill?.workerPeakRssMb ?? NaN).toFixed(0),
          cores(p.stagefill.otherCores),
        ]),
      ),
      '',
    );
  }

  if (r.budget) out.push(...renderBudget(r, r.budget));

  const v = verdicts(r);
  if (v.length) {
    out.push('### Targets', '');
    out.push(
      table(
        ['target', 'measured', 'limit', 'verdict'],
        v.map((t) => [t.target, t.measured, t.limit, t.met ? 'met' : `missed by ${pct(t.missBy)}`]),
      ),
      '',
    );
  }
  return out.join('\n');
}

function renderBudget(r: BenchResults, b: BudgetResults): string[] {
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

export const BEGIN = '<!-- bench:results:begin (generated by `npm run bench`; edit outside these markers) -->';
export const END = '<!-- bench:results:end -->';

/** Replaces the generated block of the doc, keeping the hand-written analysis around it. */
export function writeDoc(file: string, generated: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const block = `${BEGIN}\n${generated}\n${END}`;
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const i = old.indexOf(BEGIN);
  const j = old.indexOf(END);
  const next = i >= 0 && j > i ? old.slice(0, i) + block + old.slice(j + END.length) : `# Benchmarks\n\n${block}\n`;
  fs.writeFileSync(file, next);
}
