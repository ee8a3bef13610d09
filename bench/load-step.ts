/**
 * The benchmark's load step: one budgeted backfill under the load, whose
 * rate doubles mid-run, the controller's view sampled from progress, the
 * load's p99 per window, and the plot of it (budget-load-step.svg beside the report).
 */
import path from 'node:path';
import { sleep } from '../devstack';
import type { BackfillProgress } from '../workflows/definitions';
import { progressQuery } from '../workflows/definitions';
import type { LoadRun, PgTarget, Transaction } from './pgbench';
import { startLoad, perWindow } from './pgbench';
import type { BenchOptions } from './options';
import type { Contender, ContenderDeps } from './contenders';
import { stagefillWorkflowId } from './contenders';
import type { LoadStepResult, StepSample, StepWindow } from './budget-results';

/**
 * One budgeted backfill under the load, whose rate doubles (a second pgbench
 * at the same rate) once the backfill has written a quarter of its rows, or
 * `stepAfterMs` into the run if that comes first. (A step timed from an
 * estimate alone came as the run ended: the scale-50 run of 2026-12-02 had no
 * window after it.) `c` is the budgeted contender, its budget `ratio`. The controller's view sampled
 * every 500 ms from the progress query, the load's p99 per window from
 * pgbench's logs.
 */
export async function loadStep(
  target: PgTarget,
  opts: BenchOptions,
  deps: ContenderDeps,
  c: Contender,
  ratio: number,
  tag: number,
  stepAfterMs: number,
): Promise<LoadStepResult> {
  const loads: LoadRun[] = [];
  const launch = (label: string, seconds: number) => {
    const run = startLoad(target, {
      clients: opts.loadClients,
      rate: opts.loadRate,
      seconds,
      logPrefix: path.join(opts.stateDir, 'pgbench', `step-${label}`),
    });
    loads.push(run);
    return run;
  };
  const capS = Math.ceil((stepAfterMs * 8 + 120_000) / 1000);
  launch('base', capS);
  await sleep(2000);
  const t0 = Date.now();
  const samples: StepSample[] = [];
  let isDone = false;
  let stepAtMs: number | undefined;
  const step = () => {
    if (stepAtMs !== undefined) return;
    stepAtMs = Date.now() - t0;
    launch('doubled', capS);
  };
  const rows = deps.key.to - deps.key.from;
  const handle = deps.conn.client.workflow.getHandle(stagefillWorkflowId(c.id, tag));
  const sampling = (async () => {
    while (!isDone) {
      const p = (await handle.query(progressQuery).catch(() => undefined)) as BackfillProgress | undefined;
      if (p) {
        samples.push({
          t: Date.now() - t0,
          rowsProcessed: p.rowsProcessed,
          allowedRowsPerSecond: p.control?.hold ? 0 : p.control?.rowsPerSecond,
          probeP99Ms: p.control?.p99Ms,
          budgetP99Ms: p.control?.budgetP99Ms,
          hold: p.control?.hold,
          action: p.control?.action,
        });
        if (p.rowsProcessed >= rows / 4) step();
      }
      await sleep(500);
    }
  })();
  const stepTimer = setTimeout(step, stepAfterMs);
  try {
    await c.run(tag);
  } finally {
    clearTimeout(stepTimer);
    isDone = true;
  }
  await sampling;
  const wallMs = Date.now() - t0;
  await sleep(3000);
  for (const l of loads) l.stop();
  const txns: Transaction[] = (await Promise.all(loads.map((l) => l.done))).flatMap((o) => o.transactions);
  const windowsOf = (size: number): StepWindow[] =>
    perWindow(txns, t0, t0 + wallMs, size).map((w) => ({
      fromMs: w.fromMs - t0,
      p99: w.latency.p99,
      transactions: w.latency.transactions,
    }));
  return {
    ratio,
    baseRate: opts.loadRate,
    stepAtMs: stepAtMs ?? wallMs,
    wallMs,
    samples,
    windows: windowsOf(10_000),
    seconds: windowsOf(1000),
  };
}

/** The windows that count for the step's target: those starting 10 s or more after the step (the controller's time to react). */
export function windowsAfterStep(s: LoadStepResult): StepWindow[] {
  return s.windows.filter((w) => w.fromMs >= s.stepAtMs + 10_000 && w.transactions > 0);
}

/** An SVG of the load step: allowed and written rows/s (left axis), the load's p99 per second and its budget (right axis). */
export function stepSvg(s: LoadStepResult, baselineP99: number): string {
  const W = 900;
  const H = 460;
  const m = { l: 70, r: 70, t: 40, b: 90 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const tMax = Math.max(1000, s.wallMs);
  const written = s.samples.map((p, i) => {
    const prev = s.samples[Math.max(0, i - 2)] ?? p;
    return { t: p.t, v: p.t > prev.t ? ((p.rowsProcessed - prev.rowsProcessed) * 1000) / (p.t - prev.t) : 0 };
  });
  const allowed = s.samples
    .filter((p) => p.allowedRowsPerSecond !== undefined && p.allowedRowsPerSecond >= 0)
    .map((p) => ({ t: p.t, v: p.allowedRowsPerSecond! }));
  const rateMax = Math.max(1, ...written.map((p) => p.v), ...allowed.map((p) => p.v)) * 1.1;
  const budget = s.ratio * baselineP99;
  const lat = s.seconds.filter((w) => Number.isFinite(w.p99)).map((w) => ({ t: w.fromMs + 500, v: w.p99 }));
  const lat10 = s.windows.filter((w) => Number.isFinite(w.p99)).map((w) => ({ t: w.fromMs + 5000, v: w.p99 }));
  const msMax = Math.max(budget * 1.5, ...lat.map((p) => p.v)) * 1.1;
  const X = (t: number) => m.l + (t / tMax) * pw;
  const YL = (v: number) => m.t + ph - (v / rateMax) * ph;
  const YR = (v: number) => m.t + ph - (Math.min(v, msMax) / msMax) * ph;
  const line = (pts: { t: number; v: number }[], y: (v: number) => number) =>
    pts.map((p, i) => `${i ? 'L' : 'M'}${X(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  const ticks = (n: number, max: number) => Array.from({ length: n + 1 }, (_, i) => (max * i) / n);
  const fmt = (v: number) => (v >= 1000 ? `${Math.round(v / 1000)}k` : v < 10 ? v.toFixed(1) : v.toFixed(0));
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">Load step under a ${s.ratio}× latency budget: pgbench -R ${s.baseRate} → ${2 * s.baseRate} at ${(s.stepAtMs / 1000).toFixed(0)} s</text>`,
  );
  for (const v of ticks(5, rateMax))
    parts.push(
      `<line x1="${m.l}" x2="${m.l + pw}" y1="${YL(v)}" y2="${YL(v)}" stroke="#eee"/><text x="${m.l - 6}" y="${YL(v) + 4}" text-anchor="end" fill="#1f77b4">${fmt(v)}</text>`,
    );
  for (const v of ticks(5, msMax)) parts.push(`<text x="${m.l + pw + 6}" y="${YR(v) + 4}" fill="#d62728">${fmt(v)}</text>`);
  for (const t of ticks(Math.min(10, Math.ceil(tMax / 5000)), tMax))
    parts.push(`<text x="${X(t)}" y="${m.t + ph + 18}" text-anchor="middle">${(t / 1000).toFixed(0)}</text>`);
  parts.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 36}" text-anchor="middle">seconds since the backfill started</text>`);
  parts.push(
    `<text x="16" y="${m.t + ph / 2}" transform="rotate(-90 16 ${m.t + ph / 2})" text-anchor="middle" fill="#1f77b4">rows/s</text>`,
  );
  parts.push(
    `<text x="${W - 14}" y="${m.t + ph / 2}" transform="rotate(90 ${W - 14} ${m.t + ph / 2})" text-anchor="middle" fill="#d62728">load latency ms (pgbench)</text>`,
  );
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  parts.push(
    `<line x1="${X(s.stepAtMs)}" x2="${X(s.stepAtMs)}" y1="${m.t}" y2="${m.t + ph}" stroke="#555" stroke-dasharray="4 3"/><text x="${X(s.stepAtMs) + 4}" y="${m.t + 14}" fill="#555">load ×2</text>`,
  );
  parts.push(
    `<line x1="${m.l}" x2="${m.l + pw}" y1="${YR(budget)}" y2="${YR(budget)}" stroke="#d62728" stroke-dasharray="6 4"/><text x="${m.l + pw - 4}" y="${YR(budget) - 4}" text-anchor="end" fill="#d62728">budget ${budget.toFixed(1)} ms</text>`,
  );
  if (allowed.length) parts.push(`<path d="${line(allowed, YL)}" fill="none" stroke="#aec7e8" stroke-width="2"/>`);
  if (written.length) parts.push(`<path d="${line(written, YL)}" fill="none" stroke="#1f77b4" stroke-width="2"/>`);
  if (lat.length) parts.push(`<path d="${line(lat, YR)}" fill="none" stroke="#ff9896" stroke-width="1"/>`);
  if (lat10.length) parts.push(`<path d="${line(lat10, YR)}" fill="none" stroke="#d62728" stroke-width="2.5"/>`);
  const legend = [
    ['#1f77b4', 'rows/s written'],
    ['#aec7e8', 'rows/s the controller allows'],
    ['#ff9896', 'load p99 per second'],
    ['#d62728', 'load p99 per 10 s window'],
  ];
  legend.forEach(([c, label], i) =>
    parts.push(
      `<line x1="${m.l + 10 + i * 200}" x2="${m.l + 30 + i * 200}" y1="${m.t + ph + 62}" y2="${m.t + ph + 62}" stroke="${c}" stroke-width="3"/><text x="${m.l + 34 + i * 200}" y="${m.t + ph + 66}">${label}</text>`,
    ),
  );
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
