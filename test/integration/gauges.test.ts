import { rollbackSignal } from '../../workflows/definitions';
import { unique, makeCounterTable, pool, useStack } from './harness';
import { outcome } from './rollout-harness';
import { rolloutOnOwnWorker, waitForState } from './own-worker';
import { recordFacts } from './report';

jest.setTimeout(120_000);

useStack();

/** The worker's /metrics text, series of the gate-divergence gauge only. */
async function divergence(metrics: { registry: { metrics(): Promise<string> } }, table: string): Promise<string[]> {
  return (await metrics.registry.metrics())
    .split('\n')
    .filter((l) => l.startsWith('stagefill_gate_divergence{') && l.includes(`table="${table}"`));
}

test('the gate-divergence gauge of a rollout is removed when it finishes (held on a failing gate, then rolled back): no alert for a run that is over', async () => {
  const table = await makeCounterTable(pool, unique('t'), 100);
  const { handle, w } = await rolloutOnOwnWorker({
    name: unique('gauge'),
    table,
    steps: [{ kind: 'gate', onFailure: 'pause', checks: [{ name: 'impossible', sql: 'SELECT 1', expect: { eq: 0 } }] }],
  });
  await waitForState(handle, 'held', 60_000);
  // while it is held the alert has its series: the check is off by 1
  expect(await divergence(w.sw.metrics, table)).toEqual([
    `stagefill_gate_divergence{kind="rollout",table="${table}",check="impossible"} 1`,
  ]);

  await handle.signal(rollbackSignal, { by: 'test', reason: 'gauge test' });
  expect((await outcome(handle)).state).toBe('rolled_back');
  expect(await divergence(w.sw.metrics, table)).toEqual([]);
  recordFacts('gate gauge after a rollout ends', { seriesWhileHeld: 1, seriesAfterRollback: 0 });
});
