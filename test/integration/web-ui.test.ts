import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Browser, Page, Locator } from 'playwright-core';
import { chromium } from 'playwright-core';
import { startTemporalDevServer, resolveChromium } from '../../devstack';
import type { TemporalDevServer } from '../../devstack/temporal';
import { startBackfill, setThrottle } from '../../client/operations';
import { startRollout } from '../../client/runs';
import { parseRolloutSpec } from '../../steps/spec';
import { progressQuery } from '../../workflows/definitions';
import { env, unique, makeCounterTable, waitFor, sleep, pool, useStack, startWorker } from './harness';
import { counterSpec, distribution, connectionFor } from './backfill-checks';
import { recordFacts } from './report';

// The operator's console, proven: the real Temporal Web UI in headless Chromium (Debian's package,
// through playwright-core) sends the signals an operator sends. The run's shared dev server is
// headless (`--headless`: no Web UI at all), so this file starts its own with the UI.
jest.setTimeout(240_000);

const chrome = resolveChromium();
if (chrome.why) process.stderr.write(`web UI tests skipped: ${chrome.why}\n`);
const withChromium = chrome.why ? describe.skip : describe;

useStack();

withChromium('the Temporal Web UI steers stagefill runs', () => {
  let server: TemporalDevServer;
  let client: Client;
  let connection: Connection;
  let browser: Browser;
  let page: Page;
  let stopWorker: () => Promise<void>;
  const taskQueue = unique('webui');
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagefill-webui-'));

  beforeAll(async () => {
    server = await startTemporalDevServer({ cli: env().cli, headless: false, logFile: path.join(logDir, 'temporal.log') });
    connection = await Connection.connect({ address: server.address });
    client = new Client({ connection, namespace: server.namespace });
    stopWorker = (await startWorker(taskQueue, { address: server.address, namespace: server.namespace })).stop;
    browser = await chromium.launch({
      executablePath: chrome.bin,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    // nothing but the local UI: no fonts, no analytics, nothing from elsewhere
    await page.route('**/*', (r) => (new URL(r.request().url()).hostname === '127.0.0.1' ? r.continue() : r.abort()));
  });
  afterAll(async () => {
    await browser?.close();
    await stopWorker?.();
    await connection?.close();
    await server?.stop();
    fs.rmSync(logDir, { recursive: true, force: true });
  });

  /** What an operator does: open the run, More Actions → Send a Signal, pick the signal, type the payload, Submit. */
  async function signalFromUi(run: { workflowId: string; runId: string }, signal: string, payload: Record<string, string>): Promise<void> {
    await page
      .goto(`${server.uiUrl}/namespaces/${server.namespace}/workflows/${encodeURIComponent(run.workflowId)}/${run.runId}/history`, {
        waitUntil: 'networkidle',
      })
      .catch(() => {});
    await page.getByRole('button', { name: 'More Actions' }).click();
    await page.getByRole('menuitem', { name: 'Send a Signal' }).click();
    // the page keeps two copies of the modal; the second is the one shown
    const modal = page.getByTestId('signal-confirmation-modal').nth(1);
    const select = modal.getByTestId('signal-select-button');
    const typed = modal.getByTestId('signal-name');
    // with a worker polling, the UI lists the signals the workflow defines (it asks the worker); otherwise it takes a typed name
    await select.or(typed).first().waitFor({ timeout: 30_000 });
    await sleep(1500); // the typed-name field turns into the list once the definitions arrive
    if (await select.isVisible()) {
      await select.click();
      await modal.getByRole('option', { name: signal, exact: true }).click();
    } else {
      await typed.fill(signal);
    }
    await modal.getByRole('textbox').last().fill(JSON.stringify(payload));
    const submit = modal.getByTestId('confirm-modal-button');
    await waitEnabled(submit);
    await submit.focus();
    await submit.click();
    await modal.waitFor({ state: 'hidden', timeout: 30_000 }).catch(async (err: Error) => {
      const shot = path.join(os.tmpdir(), `stagefill-webui-${signal}-${Date.now()}.png`);
      await page.screenshot({ path: shot }).catch(() => {});
      throw new Error(`the signal form did not close after Submit (what the page showed: ${shot}): ${err.message.split('\n')[0]}`);
    });
  }

  /** The signals in the run's history, decoded: proof they came through the UI with its payload. */
  async function signalsIn(workflowId: string): Promise<{ name: string; by?: string }[]> {
    const h = await client.workflow.getHandle(workflowId).fetchHistory();
    return (h.events ?? [])
      .map((e) => e.workflowExecutionSignaledEventAttributes)
      .filter((a): a is NonNullable<typeof a> => Boolean(a))
      .map((a) => ({
        name: a.signalName ?? '',
        by: JSON.parse(Buffer.from(a.input?.payloads?.[0]?.data ?? '{}').toString('utf8') || '{}').by,
      }));
  }

  async function waitEnabled(l: Locator): Promise<void> {
    await waitFor('the Submit button enabled', async () => l.isEnabled(), 30_000);
  }

  const progress = async (id: string) =>
    (await client.workflow.getHandle(id).query(progressQuery)) as unknown as { state: string; rowsProcessed?: number };

  test('pause from the signal form stops the rows moving in the database; resume from it lets the backfill finish', async () => {
    const table = await makeCounterTable(pool, unique('t'), 30_000);
    // slow enough (300 s for the table) that the UI's round trips always land on a running backfill;
    // after resume the rate limit goes, so it then finishes in a moment
    const s = counterSpec(table, { chunkSize: 100, parallelism: 1, throttle: { maxRowsPerSecond: 100 } });
    const run = await startBackfill(connectionFor(client, taskQueue), s, { actor: 'web-ui-test' });
    const changed = async () => (await distribution(pool, table))['1'] ?? 0;
    await waitFor('rows moving', async () => (await changed()) >= 1000, 60_000);

    await signalFromUi(run, 'pause', { by: 'web-ui-test', reason: 'paused from the Web UI' });
    await waitFor('paused', async () => (await progress(run.workflowId)).state === 'paused', 60_000);
    const atPause = await changed();
    await sleep(3000); // a throttled lane would have written ~300 rows meanwhile
    expect(await changed()).toBe(atPause);
    expect(atPause).toBeLessThan(30_000);

    await signalFromUi(run, 'resume', { by: 'web-ui-test', reason: 'resumed from the Web UI' });
    await waitFor('moving again', async () => (await changed()) > atPause, 60_000);
    await setThrottle(connectionFor(client, taskQueue), run.workflowId, { maxRowsPerSecond: null });
    const result = await client.workflow.getHandle(run.workflowId).result();
    expect(result.state).toBe('completed');
    expect(await distribution(pool, table)).toEqual({ '1': 30_000 });
    expect(await signalsIn(run.workflowId)).toEqual([
      { name: 'pause', by: 'web-ui-test' },
      { name: 'resume', by: 'web-ui-test' },
    ]);
    recordFacts('Web UI pause/resume of a backfill', { rowsAtPause: atPause, rowsWhilePaused: 0, rowsTotal: 30_000 });
  });

  test('approve from the signal form lets a rollout waiting for approval go on to completion, audited with who approved', async () => {
    const table = await makeCounterTable(pool, unique('t'), 100);
    const spec = parseRolloutSpec({
      kind: 'rollout',
      name: unique('webui-ro'),
      table,
      steps: [
        { kind: 'addCheck', name: unique('n_nonneg'), expression: 'n >= 0' },
        { kind: 'approval', timeout: '1h' },
      ],
    });
    const run = await startRollout(connectionFor(client, taskQueue), spec, { actor: 'web-ui-test' });
    await waitFor('waiting for approval', async () => (await progress(run.workflowId)).state === 'waiting_approval', 90_000);

    await signalFromUi(run, 'approve', { by: 'ops@example.com', reason: 'dashboards look right' });
    const result = (await client.workflow.getHandle(run.workflowId).result()) as { state: string };
    expect(result.state).toBe('completed');
    const audit = await pool.query(`SELECT actor FROM stagefill.events WHERE workflow_id = $1 AND event = 'approved'`, [run.workflowId]);
    expect(audit.rows).toEqual([{ actor: 'ops@example.com' }]);
    expect(await signalsIn(run.workflowId)).toEqual([{ name: 'approve', by: 'ops@example.com' }]);
    recordFacts('Web UI approve of a rollout', { approvedBy: 'ops@example.com', state: 'completed' });
  });
});
