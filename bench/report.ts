import fs from 'node:fs';
import path from 'node:path';
import { s, x, ms, pct, cores, table } from './format';
import type { BenchResults } from './results';
import { renderBudget } from './report-budget';
import { best, bestAlone, baselineP99, bestLoadRound, overheadPerChunkMs, verdicts, triggerSummary } from './results';

/** The generated part of docs/BENCHMARKS.md (and the console summary). */
export function renderResults(r: BenchResults): string {
  // size: the benchmark's page rendered in the order it reads, a few lines of table per section (the budget section is bench/report-budget.ts)
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
