import fs from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import type { History } from './history-files';
import { historyFromFile } from './history-files';

/**
 * Replays every recorded history (test/replay/histories, saved by
 * `npm run record-histories` from real runs) with the current workflow code:
 * a change that would break running workflows fails here, before it ships.
 */
const DIR = path.join(__dirname, 'histories');
jest.setTimeout(120_000);

function saved(): { file: string; workflowId: string; history: History }[] {
  return fs
    .readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => {
      const history = historyFromFile(fs.readFileSync(path.join(DIR, file), 'utf8'));
      return { file, workflowId: file.replace(/\.json$/, ''), history };
    });
}

test('every recorded workflow history replays against the current workflow code', async () => {
  const histories = saved();
  // the backfill paths: plain, pause/resume + update, continue-as-new chain, cancelled, failed chunk
  for (const name of [
    'backfill-plain',
    'backfill-pause-resume',
    'backfill-continue-as-new.1',
    'backfill-continue-as-new.2',
    'backfill-cancelled',
    'backfill-failed-chunk',
  ]) {
    expect(histories.map((h) => h.workflowId)).toContain(name);
  }
  // rollouts: recorded before the durable audit and continue-as-new (an earlier build: audit writes from signal
  // handlers, one run), and a chain recorded after it (the patch marker, keyed audit flushes, three runs)
  for (const name of [
    'rollout-forward',
    'rollout-approval-contract',
    'rollout-held-retry',
    'rollout-rolled-back',
    'rollout-continue-as-new.1',
    'rollout-continue-as-new.2',
    'rollout-continue-as-new.3',
  ]) {
    expect(histories.map((h) => h.workflowId)).toContain(name);
  }
  const failures: string[] = [];
  for await (const r of Worker.runReplayHistories(
    { workflowsPath: require.resolve('../../workflows'), replayName: 'stagefill-replay' },
    histories,
  )) {
    if (r.error) failures.push(`${r.workflowId}: ${r.error.name}: ${r.error.message}`);
  }
  expect(failures).toEqual([]);
});

test('the replayer does catch a non-deterministic change', async () => {
  const plain = saved().find((h) => h.workflowId === 'backfill-plain')!;
  const err = await Worker.runReplayHistory(
    { workflowsPath: require.resolve('./fixtures/changed-workflows'), replayName: 'stagefill-replay-changed' },
    plain.history,
  ).catch((e) => e);
  expect(err).toBeInstanceOf(DeterminismViolationError);
});
