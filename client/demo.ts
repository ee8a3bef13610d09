import pino from 'pino';
import type { Pool } from 'pg';
import { startDevStack, projectRoot, writeEnvFile, preferredDevPorts } from '../devstack';
import { createStagefillWorker, installRuntime } from '../worker/run';
import { loadWorkerConfig } from '../worker/config';
import { createPool } from '../db/pool';
import { migrate } from '../db/migrate';
import { resetDemoTable, demoRolloutSpec, DEMO_TABLE } from '../db/demo';
import { parseSpec } from '../steps/spec';
import { connect } from './connection';
import { startRun } from './runs';
import { watchRun } from './watch';

/**
 * `stagefill demo`: the embedded stack, a worker in this process, a demo
 * table, and a staged rollout with a backfill on it, followed live.
 */
export async function runDemo(opts: { exit?: boolean; rows: number; stateDir?: string }): Promise<number> {
  const say = (m: string) => process.stdout.write(`demo: ${m}\n`);
  const root = projectRoot();
  const stack = await startDevStack({ root, stateDir: opts.stateDir, ports: preferredDevPorts(), log: say });
  writeEnvFile(stack.stateDir, stack.env);
  const taskQueue = 'stagefill-demo';
  const logger = pino({ level: 'warn' });
  installRuntime(logger);
  let pool: Pool | undefined;
  let stopWorker = async () => {};
  try {
    pool = createPool({ url: stack.env.DATABASE_URL, max: 4 });
    await migrate(pool);
    say(`loading ${opts.rows.toLocaleString('en-US')} rows into ${DEMO_TABLE}`);
    await resetDemoTable(pool, opts.rows);

    say('starting a worker (bundling workflows)');
    const config = loadWorkerConfig({
      TEMPORAL_ADDRESS: stack.env.TEMPORAL_ADDRESS,
      TEMPORAL_NAMESPACE: stack.env.TEMPORAL_NAMESPACE,
      DATABASE_URL: stack.env.DATABASE_URL,
      STAGEFILL_TASK_QUEUE: taskQueue,
    });
    const sw = await createStagefillWorker({ config, logger });
    const running = sw.run();
    stopWorker = async () => {
      sw.shutdown();
      await running;
    };

    const conn = await connect({ address: stack.env.TEMPORAL_ADDRESS, namespace: stack.env.TEMPORAL_NAMESPACE, taskQueue });
    const spec = parseSpec(demoRolloutSpec());
    const run = await startRun(conn, spec, {});
    say(`started ${spec.kind} ${run.workflowId}`);
    const code = await watchRun(conn, run.workflowId, { bar: Boolean(process.stdout.isTTY) });
    await conn.close();
    const ui = stack.env.TEMPORAL_UI;
    if (ui)
      say(
        `see it in the Temporal Web UI: ${ui}/namespaces/${stack.env.TEMPORAL_NAMESPACE}/workflows/${encodeURIComponent(run.workflowId)}`,
      );
    say(`Temporal Web UI: ${ui || '(headless)'}`);
    if (!opts.exit) {
      say('the stack stays up for the Web UI; Ctrl-C stops it');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
    }
    return code;
  } finally {
    await stopWorker().catch(() => {});
    await pool?.end().catch(() => {});
    await stack.stop();
  }
}
