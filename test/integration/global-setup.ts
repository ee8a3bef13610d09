import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startDevStack, projectRoot } from '../../devstack';

/**
 * One Temporal dev server and one Postgres for the whole run (or the ones
 * TEMPORAL_ADDRESS / DATABASE_URL name). Each test makes its own tables and
 * task queue, so tests cannot see each other.
 */
export default async function globalSetup(): Promise<void> {
  const root = projectRoot();
  // per run, so concurrent runs (several developers, or a demo beside the tests) never share a cluster
  const stateDir = path.join(root, '.stagefill', `test-${process.pid}`);
  fs.rmSync(stateDir, { recursive: true, force: true });
  const started = Date.now();
  const stack = await startDevStack({
    root,
    stateDir,
    fresh: true,
    persistHistory: false,
    headless: true,
    // Durability across OS crashes is not under test; speed is welcome.
    postgresSettings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', shared_buffers: '256MB' },
    log: (m) => process.stderr.write(`[setup] ${m}\n`),
  });
  const bundlePath = path.join(stateDir, 'workflow-bundle.js');
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: quietLogger });
  fs.writeFileSync(bundlePath, code);
  Object.assign(process.env, stack.env, {
    STAGEFILL_TEST_BUNDLE: bundlePath,
    STAGEFILL_TEST_STATE_DIR: stateDir,
  });
  (globalThis as Record<string, unknown>).__stagefillStack = stack;
  process.stderr.write(
    `[setup] stack ready in ${((Date.now() - started) / 1000).toFixed(1)}s: ${stack.env.TEMPORAL_ADDRESS}, postgres ${stack.postgres ? 'embedded' : 'from DATABASE_URL'}\n`,
  );
}

const quietLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (m: string) => process.stderr.write(`[bundle] ${m}\n`),
  error: (m: string) => process.stderr.write(`[bundle] ${m}\n`),
};
