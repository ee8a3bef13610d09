import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';
import type { Client } from '@temporalio/client';
import { openPool, openClient, startWorker, unique } from '../integration/harness';
import { scenarios } from './scenarios';
import { historyToFile } from './history-files';

/**
 * `npm run record-histories`: runs every scenario against the real test stack
 * and saves each run's history for test/replay/replay.test.ts. Recording is
 * deliberate (after an intended workflow change), so a plain test run skips it.
 */
const DIR = path.join(__dirname, 'histories');
const only = process.env.STAGEFILL_RECORD_ONLY?.split(',');
const recording = process.env.STAGEFILL_RECORD === '1';

jest.setTimeout(300_000);

let pool: Pool;
let client: Client;
let closeClient: () => Promise<void>;

(recording ? describe : describe.skip)('record workflow histories', () => {
  beforeAll(async () => {
    pool = await openPool();
    ({ client, close: closeClient } = await openClient());
    fs.mkdirSync(DIR, { recursive: true });
  });
  afterAll(async () => {
    await pool?.end();
    await closeClient?.();
  });

  test.each(scenarios.filter((s) => !only || only.includes(s.name)).map((s) => [s.name, s] as const))('%s', async (name, scenario) => {
    const taskQueue = unique('replay');
    const w = await startWorker(taskQueue);
    let workflowId: string;
    try {
      workflowId = await scenario.run({ pool, client, taskQueue });
    } finally {
      await w.stop();
    }
    for (const f of fs.readdirSync(DIR).filter((f) => f === `${name}.json` || new RegExp(`^${name}\\.\\d+\\.json$`).test(f)))
      fs.rmSync(path.join(DIR, f));
    // follow the continue-as-new chain from the first run
    const runs: string[] = [];
    const latest = await client.workflow.getHandle(workflowId).fetchHistory();
    let runId: string | undefined = latest.events?.[0]?.workflowExecutionStartedEventAttributes?.firstExecutionRunId || undefined;
    while (runId) {
      const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
      runs.push(historyToFile(history));
      const last = history.events![history.events!.length - 1];
      runId = last!.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    }
    runs.forEach((text, i) => fs.writeFileSync(path.join(DIR, runs.length === 1 ? `${name}.json` : `${name}.${i + 1}.json`), text));
    process.stderr.write(`[record] ${name}: ${runs.length} run(s) saved\n`);
  });
});
