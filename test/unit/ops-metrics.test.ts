import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { Registry } from 'prom-client';
import { createMetrics } from '../../worker/metrics';

const ops = path.join(__dirname, '..', '..', 'ops');
const dashboard = JSON.parse(fs.readFileSync(path.join(ops, 'grafana', 'dashboards', 'stagefill.json'), 'utf8'));
const rules = YAML.parse(fs.readFileSync(path.join(ops, 'prometheus', 'alerts.yml'), 'utf8'));

/** Every PromQL expression the dashboard evaluates: panel targets, template queries, annotations. */
function dashboardExprs(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const p of dashboard.panels) for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}"`, expr: t.expr });
  for (const v of dashboard.templating.list) out.push({ where: `variable $${v.name}`, expr: v.query.query ?? v.query });
  for (const a of dashboard.annotations.list) if (a.expr) out.push({ where: `annotation "${a.name}"`, expr: a.expr });
  return out;
}

function ruleExprs(): { where: string; expr: string }[] {
  return rules.groups.flatMap((g: { rules: { alert: string; expr: string }[] }) =>
    g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
  );
}

const FUNCTIONS = new Set([
  'sum',
  'max',
  'min',
  'avg',
  'count',
  'rate',
  'irate',
  'increase',
  'delta',
  'histogram_quantile',
  'label_values',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'offset',
  'clamp_min',
  'clamp_max',
  'abs',
  'topk',
  'bottomk',
]);

/** Metric names an expression reads: identifiers left after label matchers, grouping lists, strings and durations are removed. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/label_values\(([^,]+),\s*\w+\)/g, '$1')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\w+/g, ' ');
  return [...new Set([...stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)].map((m) => m[0]).filter((t) => !FUNCTIONS.has(t)))];
}

/** What a scrape of a worker exposes: each family, and a histogram's _bucket/_sum/_count series. */
async function exported(): Promise<Set<string>> {
  const m = createMetrics(new Registry());
  const names = new Set<string>();
  for (const fam of await m.registry.getMetricsAsJSON()) {
    names.add(fam.name);
    if (String(fam.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(fam.name + s);
  }
  return names;
}

test('the name extraction finds metrics and skips labels, functions and durations', () => {
  expect(
    metricNames('sum by (table) (rate(stagefill_rows_processed_total{table=~"$table"}[5m])) / on (table) group_left () max(x_total)'),
  ).toEqual(['stagefill_rows_processed_total', 'x_total']);
});

test.each([...dashboardExprs(), ...ruleExprs()].map((e) => [e.where, e.expr]))(
  '%s queries only metrics the worker exports',
  async (_where, expr) => {
    const names = metricNames(expr);
    expect(names.length).toBeGreaterThan(0);
    const known = await exported();
    for (const n of names) expect({ metric: n, exported: known.has(n) }).toEqual({ metric: n, exported: true });
  },
);

test('the dashboard covers what operators asked for, and the rules cover the five alerts', () => {
  const titles = dashboard.panels.map((p: { title: string }) => p.title.toLowerCase()).join('\n');
  for (const want of [
    'throughput',
    'eta',
    'chunk latency',
    'throttle waits',
    'gate results',
    'divergence',
    'rollbacks',
    'latency budget',
    'throttle held',
    'replica lag',
  ])
    expect(titles).toContain(want);
  const heat = dashboard.panels.find((p: { type: string }) => p.type === 'heatmap');
  expect(heat.targets[0].expr).toContain('stagefill_chunk_duration_seconds_bucket');
  expect(
    ruleExprs()
      .map((r) => r.where)
      .sort(),
  ).toEqual([
    'alert StagefillBackfillStalled',
    'alert StagefillDivergenceOverTolerance',
    'alert StagefillHeldByBudget',
    'alert StagefillRollbackHappened',
    'alert StagefillThrottleSaturated',
  ]);
});

test('every panel reads the provisioned data source', () => {
  const provisioned = YAML.parse(fs.readFileSync(path.join(ops, 'grafana', 'provisioning', 'datasources', 'prometheus.yml'), 'utf8'));
  const uid = provisioned.datasources[0].uid;
  for (const p of dashboard.panels.filter((x: { type: string }) => x.type !== 'row')) expect(p.datasource.uid).toBe(uid);
});
