import fs from 'node:fs';
import path from 'node:path';
import { pool, dir, taskQueue, useStack, unique, waitFor } from './harness';
import { makeOrders, centsColumn, centsGate } from './rollout-harness';
import { cli, cliStatus, runCli, cliEnv, tempDir, writeSpec } from './cli-harness';

jest.setTimeout(180_000);

useStack({ worker: true, dir: 'stagefill-cli-rollout', queue: 'clirq' });

const statusOf = (id: string) => cliStatus<{ state: string; steps: { id: string; state: string }[] }>(id);

function centsRollout(table: string) {
  return {
    kind: 'rollout',
    name: unique('cents'),
    table,
    steps: [centsColumn(500), centsGate(table, 'cents match'), { kind: 'approval', timeout: '2m' }, { kind: 'expose', version: 2 }],
  };
}

test('start runs a rollout; approve lets it through its approval step; watch exits 0; history shows steps, gate results and who approved', async () => {
  const table = await makeOrders(pool, unique('orders'), 3_000);
  const spec = centsRollout(table);
  const start = await cli('start', writeSpec(dir, spec));
  expect(start.code).toBe(0);
  const id = start.stdout.trim();
  expect(id).toBe(`stagefill-rollout:${spec.name}`);

  await waitFor('waiting for approval', async () => (await statusOf(id)).state === 'waiting_approval', 120_000, 500);
  const text = await cli('status', id);
  expect(text.stdout).toMatch(/waiting_approval/);
  expect(text.stdout).toMatch(/completed\s+1-addColumn \(addColumn on /);

  const approve = await cli('approve', id, '--reason', 'dashboards look right');
  expect(approve.code).toBe(0);
  const watch = await cli('watch', id);
  expect(watch.code).toBe(0);
  expect(watch.stdout).toContain(`${id}: completed (COMPLETED)`);

  const history = await cli('history', id);
  expect(history.code).toBe(0);
  expect(history.stdout).toMatch(new RegExp(`rollout ${spec.name} on ${table}: completed`));
  expect(history.stdout).toMatch(/completed\s+3-approval \(approval on /);
  expect(history.stdout).toMatch(/2-gate #\d+ cents match: pass value 0/);
  expect(history.stdout).toContain('cli-test'); // the actor of the approval, from STAGEFILL_ACTOR
  const json = JSON.parse((await cli('history', id, '--json')).stdout);
  expect(json.rollout.steps.map((s: { state: string }) => s.state)).toEqual(['completed', 'completed', 'completed', 'completed']);
});

test('rollback rolls a rollout back to where it started; watch exits 1; list finds it by state', async () => {
  const table = await makeOrders(pool, unique('orders'), 2_000);
  const spec = centsRollout(table);
  const id = (await cli('start', writeSpec(dir, spec))).stdout.trim();
  await waitFor('waiting for approval', async () => (await statusOf(id)).state === 'waiting_approval', 120_000, 500);

  const rollback = await cli('rollback', id, '--reason', 'reports disagree');
  expect(rollback.code).toBe(0);
  const watch = await cli('watch', id);
  expect(watch.code).toBe(1);
  expect(watch.stdout).toMatch(new RegExp(`${id}: rolled_back \\(FAILED\\)`));
  const { rows } = await pool.query(
    `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = 'amount_cents'`,
    [table.split('.')[1]],
  );
  expect(rows[0].n).toBe(0); // the added column is gone again

  const history = await cli('history', id);
  expect(history.stdout).toMatch(/: rolled_back/);
  expect(history.stdout).toMatch(/catalog of .* after rollback: identical to before the rollout/);
  const listed = await waitFor('the rollout in list', async () => {
    const runs = JSON.parse((await cli('list', '--kind', 'rollout', '--state', 'rolled_back', '--table', table, '--json')).stdout) as {
      workflowId: string;
    }[];
    return runs.length > 0 && runs;
  });
  expect(listed.map((r) => r.workflowId)).toEqual([id]);
});

test('demo runs its staged rollout on the stack it is given and exits 0 with --exit', async () => {
  const stateDir = tempDir('stagefill-demo');
  try {
    const demo = await runCli(['demo', '--exit', '--rows', '3000', '--state-dir', stateDir], cliEnv(taskQueue), 170_000);
    expect(demo.stderr).toBe('');
    expect(demo.code).toBe(0);
    expect(demo.stdout).toMatch(/demo: started rollout stagefill-rollout:demo-cents-\d+/);
    expect(demo.stdout).toMatch(/: completed \(COMPLETED\)/);
    expect(fs.existsSync(path.join(stateDir, 'dev.env'))).toBe(true);
  } finally {
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
});
