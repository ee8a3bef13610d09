/**
 * A platform team's script: start a rollout from a typed spec object and
 * follow it to the end, approving its approval step once our own checks pass.
 *
 * In your project: `import { ... } from 'stagefill'`. From this repository:
 *   npm run build && npx tsc -p examples && node dist/examples/start-rollout.js public.orders
 * with TEMPORAL_ADDRESS (and the other worker variables) set, and a worker running.
 */
import { connect, parseRolloutSpec, startRollout, getProgress, sendControl, waitForRun, formatStatus, SpecError } from '../client';
import type { RolloutSpecInput } from '../client';

function ordersCentsRollout(table: string): RolloutSpecInput {
  return {
    kind: 'rollout',
    name: `orders-cents-${new Date().toISOString().slice(0, 10)}`,
    table,
    rollbackWindow: '1h',
    steps: [
      { kind: 'addColumn', column: 'amount_cents', type: 'bigint', up: 'round(amount * 100)::bigint', backfill: { chunkSize: 5000 } },
      {
        kind: 'gate',
        checks: [
          {
            name: 'cents match amount',
            sql: `SELECT count(*) FROM ${table} WHERE amount_cents IS DISTINCT FROM round(amount * 100)::bigint`,
            expect: { eq: 0 },
          },
        ],
      },
      { kind: 'approval', timeout: '2h' },
      { kind: 'expose', version: 2 },
    ],
  };
}

/** Our own pre-approval check; a real script would look at dashboards or run a report. */
function looksGood(): Promise<boolean> {
  return Promise.resolve(true);
}

async function main(table: string): Promise<number> {
  // parse first: a mistake in the spec is reported with its field before anything starts
  const spec = parseRolloutSpec(ordersCentsRollout(table));
  const conn = await connect(); // TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, STAGEFILL_TASK_QUEUE, TLS files
  try {
    const run = await startRollout(conn, spec, { actor: 'orders-migration-script' });
    console.log(`started ${run.workflowId}`);
    let approved = false;
    for (;;) {
      const p = await getProgress<{ state: string }>(conn, run.workflowId);
      console.log(formatStatus(p));
      if (p.state === 'waiting_approval' && !approved && (await looksGood())) {
        await sendControl(conn, run.workflowId, 'approve', { by: 'orders-migration-script', reason: 'report matched' });
        approved = true;
      }
      if (p.workflowStatus !== 'RUNNING') break;
      await new Promise((r) => setTimeout(r, 2000));
    }
    const result = await waitForRun<{ state: string }>(conn, run.workflowId);
    console.log(`${run.workflowId}: ${result.state}`);
    return result.state === 'completed' ? 0 : 1;
  } finally {
    await conn.close();
  }
}

main(process.argv[2] ?? 'public.orders').then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof SpecError ? `invalid spec: ${err.message}` : err);
    process.exit(err instanceof SpecError ? 2 : 1);
  },
);
