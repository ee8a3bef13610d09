import { WorkflowFailedError } from '@temporalio/client';
import type { BackfillWorkflowInput } from '../../workflows/backfill/workflow';
import { backfillWorkflow } from '../../workflows/backfill/workflow';
import { pauseSignal, resumeSignal, setThrottleUpdate } from '../../workflows/definitions';
import { backfillWorkflowId } from '../../core/common/ids';
import { makeCounterTable, unique, waitFor } from '../integration/harness';
import { counterSpec, progressOf } from '../integration/backfill-checks';
import type { Scenario, ScenarioContext } from './scenarios';

/** Starts a counter-table backfill and returns its handle; the spec is tuned per path. */
async function start(ctx: ScenarioContext, rows: number, spec: Record<string, unknown>, input: Partial<BackfillWorkflowInput> = {}) {
  const table = await makeCounterTable(ctx.pool, unique('replay'), rows);
  const s = counterSpec(table, spec);
  const workflowId = backfillWorkflowId(s.table, s.name);
  const handle = await ctx.client.workflow.start(backfillWorkflow, {
    taskQueue: ctx.taskQueue,
    workflowId,
    args: [{ spec: s, leaseMs: 500, ...input }],
  });
  return { handle, table, spec: s };
}

const failureIsExpected = (err: unknown) => {
  if (!(err instanceof WorkflowFailedError)) throw err;
};

export const backfillScenarios: Scenario[] = [
  {
    name: 'backfill-plain',
    async run(ctx) {
      const { handle } = await start(ctx, 3000, { chunkSize: 500 });
      await handle.result();
      return handle.workflowId;
    },
  },
  {
    // no webhook in the spec nor in the worker: the run asks the worker once (a local activity) and schedules no delivery
    name: 'backfill-notify-nobody',
    async run(ctx) {
      const { handle } = await start(ctx, 1000, { chunkSize: 500 });
      await handle.result();
      return handle.workflowId;
    },
  },
  {
    // pause, a throttle update, resume: every handler the workflow has, in one history
    name: 'backfill-pause-resume',
    async run(ctx) {
      const { handle } = await start(ctx, 6000, { chunkSize: 250, throttle: { maxRowsPerSecond: 2000 } });
      await waitFor('progress', async () => (await progressOf(ctx.client, handle.workflowId)).chunksDone > 0);
      await handle.signal(pauseSignal, { by: 'replay-recorder', reason: 'recording' });
      await waitFor('paused', async () => (await progressOf(ctx.client, handle.workflowId)).state === 'paused');
      await handle.executeUpdate(setThrottleUpdate, { args: [{ chunkSize: 500, maxRowsPerSecond: null }] });
      await handle.signal(resumeSignal, { by: 'replay-recorder' });
      await handle.result();
      return handle.workflowId;
    },
  },
  {
    name: 'backfill-continue-as-new',
    async run(ctx) {
      // one chunk per lease, a new run every ~40 events: a chain of several runs
      const { handle } = await start(ctx, 4000, { chunkSize: 200, parallelism: 1 }, { leaseMs: 1, maxHistoryEvents: 40 });
      const result = await handle.result();
      if (result.state !== 'completed') throw new Error(`expected completed, got ${result.state}`);
      return handle.workflowId;
    },
  },
  {
    name: 'backfill-cancelled',
    async run(ctx) {
      const { handle } = await start(ctx, 20_000, { chunkSize: 250, throttle: { maxRowsPerSecond: 2000 } });
      await waitFor('progress', async () => (await progressOf(ctx.client, handle.workflowId)).chunksDone > 1);
      await handle.cancel();
      await handle.result().catch(failureIsExpected);
      return handle.workflowId;
    },
  },
  {
    // the latency-budget path: a probe beside the lanes, lanes parked and woken by the controller, a budget
    // change restarting the probe, and the budget dropped (the round ends; the next one runs without a probe)
    name: 'backfill-latency-budget',
    async run(ctx) {
      const { handle } = await start(ctx, 60_000, {
        chunkSize: 500,
        parallelism: 2,
        throttle: { latency: { p99Ms: 1000 }, maxRowsPerSecond: 5000 },
      });
      await waitFor('progress under the budget', async () => (await progressOf(ctx.client, handle.workflowId)).rowsProcessed >= 5000);
      await handle.executeUpdate(setThrottleUpdate, { args: [{ latency: { p99Ms: 500 } }] });
      await waitFor('more progress', async () => (await progressOf(ctx.client, handle.workflowId)).rowsProcessed >= 20_000);
      await handle.executeUpdate(setThrottleUpdate, { args: [{ latency: null }] });
      await handle.result();
      return handle.workflowId;
    },
  },
  {
    name: 'backfill-failed-chunk',
    async run(ctx) {
      const table = await makeCounterTable(ctx.pool, unique('replay'), 3000);
      await ctx.pool.query(`ALTER TABLE ${table} ADD CONSTRAINT no_bump CHECK (n = 0 OR id < 2001 OR id > 2100)`);
      const s = counterSpec(table, { chunkSize: 500, parallelism: 1 });
      const handle = await ctx.client.workflow.start(backfillWorkflow, {
        taskQueue: ctx.taskQueue,
        workflowId: backfillWorkflowId(s.table, s.name),
        args: [{ spec: s, leaseMs: 500 }],
      });
      await handle.result().catch(failureIsExpected);
      return handle.workflowId;
    },
  },
];
