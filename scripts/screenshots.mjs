#!/usr/bin/env node
// Screenshots of the Temporal Web UI as an operator sees a running backfill and a
// rollout waiting for approval, for docs/screenshots/. Starts its own `stagefill dev`
// stack and worker in a temporary folder, drives Debian's chromium (no browser
// download) through playwright-core, and stops everything it started.
//   npm run screenshots            (needs `apt-get install chromium`, or CHROMIUM=/path)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const require = createRequire(import.meta.url);
const { connect, startBackfill, startRollout, parseBackfillSpec, parseRolloutSpec, getProgress } = require(
  path.join(root, 'dist', 'client', 'index.js'),
);
const { createPool } = require(path.join(root, 'dist', 'db', 'pool.js'));
const { resetDemoTable } = require(path.join(root, 'dist', 'db', 'demo.js'));

const outDir = path.join(root, 'docs', 'screenshots');
const executablePath = process.env.CHROMIUM ?? ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => fs.existsSync(p));
if (!executablePath) {
  console.error('screenshots: no chromium found; `apt-get install -y chromium` or set CHROMIUM=/path/to/chrome');
  process.exit(2);
}

const say = (m) => process.stderr.write(`screenshots: ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = [];
let page; // the browser page, kept for a picture of what it showed when something failed
const failedShot = path.join(os.tmpdir(), 'stagefill-screens-failed.png');

/** A child process whose output we keep, stopped (SIGTERM, then SIGKILL) at the end. */
function run(name, args, env) {
  const child = spawn(process.execPath, [path.join(root, 'dist', 'client', 'cli.js'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.once('exit', r));
  started.push(async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await Promise.race([exited, sleep(25_000).then(() => child.kill('SIGKILL'))]);
  });
  return { child, output: () => out, name };
}

async function until(what, fn, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

async function main() {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-screens-'));
  started.push(async () => fs.rmSync(stateDir, { recursive: true, force: true }));
  // a stack of its own, with the Web UI: never the developer's or a test run's
  const baseEnv = { ...process.env, CI: '1', LOG_LEVEL: 'warn' };
  for (const k of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_UI', 'DATABASE_URL']) delete baseEnv[k];
  say('starting `stagefill dev` (Temporal dev server with the Web UI, PostgreSQL)');
  const dev = run('dev', ['dev', '--state-dir', stateDir, '--fresh'], baseEnv);
  await until('the dev stack', async () => dev.output().includes('ready;'), 180_000);
  const stack = Object.fromEntries(
    dev
      .output()
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  if (!stack.TEMPORAL_UI) throw new Error(`the dev stack has no Web UI:\n${dev.output()}`);
  const taskQueue = 'stagefill-screens';
  const env = { ...baseEnv, ...stack, STAGEFILL_TASK_QUEUE: taskQueue };

  const pool = createPool({ url: stack.DATABASE_URL, max: 2 });
  started.push(async () => pool.end());
  say('loading the demo table');
  await resetDemoTable(pool, 300_000);
  await pool.query('ALTER TABLE stagefill_demo.orders ADD COLUMN amount_cents bigint');
  await pool.query(`CREATE TABLE stagefill_demo.payments AS
    SELECT g::bigint AS id, round((g % 997) * 1.31, 2)::numeric(12,2) AS amount, 'EUR'::text AS currency FROM generate_series(1, 20000) g`);
  await pool.query('ALTER TABLE stagefill_demo.payments ADD PRIMARY KEY (id)');

  say('starting a worker');
  run('worker', ['worker'], env);
  const conn = await connect({ address: stack.TEMPORAL_ADDRESS, namespace: stack.TEMPORAL_NAMESPACE, taskQueue });
  started.push(async () => conn.close());

  const backfill = parseBackfillSpec({
    kind: 'backfill',
    name: 'orders-amount-cents',
    table: 'stagefill_demo.orders',
    key: 'id',
    chunkSize: 2000,
    parallelism: 2,
    throttle: { maxRowsPerSecond: 1500 },
    transform: 'UPDATE stagefill_demo.orders SET amount_cents = round(amount * 100)::bigint WHERE id >= :lo AND id < :hi',
  });
  const bf = await startBackfill(conn, backfill, { actor: 'ops@example.com' });
  const rollout = parseRolloutSpec({
    kind: 'rollout',
    name: 'payments-amount-cents',
    table: 'stagefill_demo.payments',
    rollbackWindow: '1h',
    steps: [
      { kind: 'addColumn', column: 'amount_cents', type: 'bigint', up: 'round(amount * 100)::bigint', backfill: { chunkSize: 2000 } },
      {
        kind: 'gate',
        checks: [
          {
            name: 'cents match amount',
            sql: 'SELECT count(*) FROM stagefill_demo.payments WHERE amount_cents IS DISTINCT FROM round(amount * 100)::bigint',
            expect: { eq: 0 },
          },
        ],
      },
      { kind: 'approval', timeout: '8h' },
      { kind: 'expose', version: 2 },
      { kind: 'contract' },
    ],
  });
  const ro = await startRollout(conn, rollout, { actor: 'ops@example.com' });
  await until(
    'the rollout waiting for approval',
    async () => (await getProgress(conn, ro.workflowId)).state === 'waiting_approval',
    180_000,
  );
  await until('the backfill under way', async () => {
    const p = await getProgress(conn, bf.workflowId);
    return p.state === 'running' && p.rowsProcessed > 20_000;
  });

  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-chromium-'));
  started.push(async () => fs.rmSync(userDataDir, { recursive: true, force: true }));
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    viewport: { width: 1440, height: 1000 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  started.push(async () => browser.close());
  page = await browser.newPage();
  // nothing but the local UI: no fonts, no analytics, nothing from elsewhere
  await page.route('**/*', (r) => (new URL(r.request().url()).hostname === '127.0.0.1' ? r.continue() : r.abort()));
  fs.mkdirSync(outDir, { recursive: true });
  const ui = stack.TEMPORAL_UI;
  const ns = stack.TEMPORAL_NAMESPACE || 'default';

  const shoot = async (file, url, waitText) => {
    await page.goto(url, { waitUntil: 'networkidle' }).catch(() => {});
    await page.getByText(waitText).first().waitFor({ timeout: 60_000 });
    await sleep(1500); // let the event history and counters finish rendering
    await page.screenshot({ path: path.join(outDir, file) });
    say(`wrote docs/screenshots/${file}`);
  };
  // The Queries tab runs `progress` against the live workflow: what `stagefill status --json` prints.
  const shootQuery = async (file, run) => {
    await page.goto(`${base(run)}/query`, { waitUntil: 'networkidle' }).catch(() => {});
    // `progress` is stagefill's only query besides the SDK's own, and the form starts on it
    await page.getByRole('button', { name: 'Run Query' }).click({ timeout: 30_000 });
    await page.getByText('"state"').first().waitFor({ timeout: 30_000 });
    await sleep(1000);
    await page.screenshot({ path: path.join(outDir, file) });
    say(`wrote docs/screenshots/${file}`);
  };
  // The UI's signal form: an operator approves (or pauses, resumes, rolls back) with the same payload the CLI sends.
  const shootSignalForm = async (file, run) => {
    await page.goto(`${base(run)}/history`, { waitUntil: 'networkidle' }).catch(() => {});
    await page.getByRole('button', { name: /More Actions/ }).click();
    await page.getByText('Send a Signal', { exact: true }).filter({ visible: true }).first().click();
    // the form's fields have no stable names: click just below their labels, as a person would
    const below = async (label, dy) => {
      const box = await page.getByText(label, { exact: true }).filter({ visible: true }).first().boundingBox();
      await page.mouse.click(box.x + 150, box.y + box.height + dy);
    };
    await below('Signal name', 20);
    // the list offers the signals the workflow defines (workflows/definitions.ts)
    await page.getByText('approve', { exact: true }).filter({ visible: true }).first().click();
    await below('Data', 24);
    await page.keyboard.type('{"by": "ops@example.com", "reason": "report matched"}');
    await sleep(800);
    await page.screenshot({ path: path.join(outDir, file) });
    say(`wrote docs/screenshots/${file}`);
    await page.keyboard.press('Escape');
  };
  const base = (run) => `${ui}/namespaces/${ns}/workflows/${encodeURIComponent(run.workflowId)}/${run.runId}`;
  await shoot(
    'workflows-list.png',
    `${ui}/namespaces/${ns}/workflows?query=${encodeURIComponent("StagefillKind IN ('backfill', 'rollout')")}`,
    bf.workflowId,
  );
  await shoot('backfill-running.png', `${base(bf)}/history`, bf.workflowId);
  await shootQuery('backfill-progress-query.png', bf);
  await shoot('rollout-waiting-approval.png', `${base(ro)}/history`, ro.workflowId);
  await shootQuery('rollout-progress-query.png', ro);
  // the UI's own markup decides whether this works; the other pictures stand without it
  await shootSignalForm('rollout-approve-signal.png', ro).catch((err) => say(`no signal-form picture: ${err.message.split('\n')[0]}`));
}

let code = 0;
try {
  await main();
} catch (err) {
  console.error(`screenshots: ${err.stack ?? err}`);
  if (page)
    await page.screenshot({ path: failedShot }).then(
      () => console.error(`screenshots: what the page showed: ${failedShot}`),
      () => {},
    );
  code = 1;
} finally {
  for (const stop of started.reverse()) await stop().catch(() => {});
}
process.exit(code);
