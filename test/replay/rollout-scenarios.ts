import { WorkflowFailedError } from '@temporalio/client';
import { approveSignal, retrySignal, rollbackSignal, resumeSignal, pauseSignal } from '../../workflows/definitions';
import { rolloutWorkflow } from '../../workflows/rollout/workflow';
import { parseRolloutSpec } from '../../steps/spec';
import { unique, waitFor } from '../integration/harness';
import { makeOrders, startSpec, progressOf, centsColumn } from '../integration/rollout-harness';
import type { Scenario, ScenarioContext } from './scenarios';

const cents = centsColumn(500);

async function rollout(ctx: ScenarioContext, rows: number, spec: (table: string) => Record<string, unknown>) {
  const table = await makeOrders(ctx.pool, unique('replay'), rows);
  const { handle } = await startSpec(ctx.client, ctx.taskQueue, { kind: 'rollout', name: unique('replay'), table, ...spec(table) });
  return { handle, table };
}

const rolledBackIsExpected = (err: unknown) => {
  if (!(err instanceof WorkflowFailedError)) throw err;
};

export const rolloutScenarios: Scenario[] = [
  {
    name: 'rollout-forward',
    async run(ctx) {
      const { handle } = await rollout(ctx, 2000, (t) => ({
        steps: [
          cents,
          { kind: 'gate', checks: [{ name: 'no nulls', sql: `SELECT count(*) FROM ${t} WHERE amount_cents IS NULL`, expect: { eq: 0 } }] },
          { kind: 'expose', version: 2 },
        ],
      }));
      await handle.result();
      return handle.workflowId;
    },
  },
  {
    name: 'rollout-rolled-back',
    async run(ctx) {
      const { handle } = await rollout(ctx, 2000, (t) => ({
        steps: [
          cents,
          { kind: 'setNotNull', column: 'amount_cents' },
          { kind: 'expose', version: 2 },
          { kind: 'gate', checks: [{ name: 'impossible', sql: `SELECT count(*) FROM ${t}`, expect: { eq: 0 } }] },
        ],
      }));
      await handle.result().catch(rolledBackIsExpected);
      return handle.workflowId;
    },
  },
  {
    // a graph: two independent branches, soak, an approval from a signal, then contract
    name: 'rollout-approval-contract',
    async run(ctx) {
      const { handle } = await rollout(ctx, 1000, (t) => ({
        rollbackWindow: '1s',
        steps: [
          { ...cents, id: 'cents', dependsOn: [] },
          { id: 'qty-check', kind: 'addCheck', name: 'qty_positive', expression: 'qty > 0', dependsOn: [] },
          { id: 'expose', kind: 'expose', version: 2, dependsOn: ['cents', 'qty-check'] },
          {
            id: 'soak',
            kind: 'soak',
            duration: '2s',
            every: '1s',
            checks: [{ name: 'no nulls', sql: `SELECT count(*) FROM ${t} WHERE amount_cents IS NULL`, expect: { eq: 0 } }],
          },
          { id: 'approve', kind: 'approval', timeout: '5m' },
          { id: 'contract', kind: 'contract' },
        ],
      }));
      await waitFor('waiting for approval', async () => (await progressOf(handle)).state === 'waiting_approval');
      await handle.signal(approveSignal, { by: 'replay-recorder' });
      await handle.result();
      return handle.workflowId;
    },
  },
  {
    name: 'rollout-held-retry',
    async run(ctx) {
      const { handle, table } = await rollout(ctx, 1000, (t) => ({
        steps: [
          cents,
          {
            kind: 'gate',
            onFailure: 'pause',
            checks: [{ name: 'sane qty', sql: `SELECT count(*) FROM ${t} WHERE qty > 100`, expect: { eq: 0 } }],
          },
        ],
      }));
      await ctx.pool.query(`UPDATE ${table} SET qty = 999 WHERE id = 3`);
      await waitFor('held', async () => (await progressOf(handle)).state === 'held');
      await ctx.pool.query(`UPDATE ${table} SET qty = 1 WHERE id = 3`);
      await handle.signal(retrySignal, { by: 'replay-recorder' });
      await handle.result();
      return handle.workflowId;
    },
  },
  {
    // a rollback held by a revert (createTable's table has someone's row), then retried once the row is gone
    name: 'rollout-revert-held',
    async run(ctx) {
      const table = `public.${unique('replay')}`;
      const { handle } = await startSpec(ctx.client, ctx.taskQueue, {
        kind: 'rollout',
        name: unique('replay'),
        table,
        steps: [
          { kind: 'createTable', columns: [{ name: 'id', type: 'bigint', notNull: true }], primaryKey: ['id'] },
          { kind: 'approval', timeout: '2m' },
        ],
      });
      await waitFor('waiting for approval', async () => (await progressOf(handle)).state === 'waiting_approval');
      await ctx.pool.query(`INSERT INTO ${table} VALUES (1)`);
      await handle.signal(rollbackSignal, { by: 'replay-recorder' });
      await waitFor('held', async () => (await progressOf(handle)).state === 'held');
      await ctx.pool.query(`DELETE FROM ${table}`);
      await handle.signal(retrySignal, { by: 'replay-recorder' });
      await handle.result().catch(rolledBackIsExpected);
      return handle.workflowId;
    },
  },
  {
    // the patch rollout-live-states: paused while waiting for approval (the search attribute follows), approved while
    // paused, resumed; contract waits for its rollback window (waiting_window); state changes audited
    name: 'rollout-live-states',
    async run(ctx) {
      const { handle } = await rollout(ctx, 500, () => ({
        rollbackWindow: '3s',
        steps: [cents, { id: 'approve', kind: 'approval', timeout: '5m' }, { id: 'contract', kind: 'contract' }],
      }));
      await waitFor('waiting for approval', async () => (await progressOf(handle)).state === 'waiting_approval');
      await handle.signal(pauseSignal, { by: 'replay-recorder' });
      await waitFor('paused', async () => (await progressOf(handle)).state === 'paused');
      await handle.signal(approveSignal, { by: 'replay-recorder' });
      await waitFor('approved', async () => (await progressOf(handle)).steps.find((x) => x.id === 'approve')?.state === 'completed');
      await handle.signal(resumeSignal, { by: 'replay-recorder' });
      await handle.result();
      return handle.workflowId;
    },
  },
  {
    // durable audit and continue-as-new: a soak beside an approval over a chain of runs (a low event threshold),
    // signals queued and flushed, the approval carried across runs, a held gate after it
    name: 'rollout-continue-as-new',
    async run(ctx) {
      const table = await makeOrders(ctx.pool, unique('replay'), 500);
      const spec = parseRolloutSpec({
        kind: 'rollout',
        name: unique('replay'),
        table,
        steps: [
          { ...cents, id: 'cents', dependsOn: [] },
          {
            id: 'soak',
            kind: 'soak',
            duration: '6s',
            every: '10ms',
            dependsOn: ['cents'],
            checks: [{ name: 'no nulls', sql: `SELECT count(*) FROM ${table} WHERE amount_cents IS NULL`, expect: { eq: 0 } }],
          },
          { id: 'approve', kind: 'approval', timeout: '7d', dependsOn: ['cents'] },
          {
            id: 'sane',
            kind: 'gate',
            onFailure: 'pause',
            dependsOn: ['soak', 'approve'],
            checks: [{ name: 'sane qty', sql: `SELECT count(*) FROM ${table} WHERE qty > 100`, expect: { eq: 0 } }],
          },
        ],
      });
      const handle = await ctx.client.workflow.start(rolloutWorkflow, {
        taskQueue: ctx.taskQueue,
        workflowId: unique('replay-can'),
        args: [{ spec, actor: 'replay-recorder', continueAsNewAfterEvents: 200 }],
      });
      for (let i = 0; (await progressOf(handle)).steps.find((s) => s.id === 'soak')!.state !== 'completed'; i++) {
        await handle.signal(resumeSignal, { by: `replay-recorder-${i}` });
        await new Promise((r) => setTimeout(r, 300));
      }
      await ctx.pool.query(`UPDATE ${table} SET qty = 999 WHERE id = 3`);
      await handle.signal(approveSignal, { by: 'replay-recorder' });
      await waitFor('held', async () => (await progressOf(handle)).state === 'held');
      await ctx.pool.query(`UPDATE ${table} SET qty = 1 WHERE id = 3`);
      await handle.signal(retrySignal, { by: 'replay-recorder' });
      await handle.result();
      return handle.workflowId;
    },
  },
];
