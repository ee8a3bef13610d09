/**
 * A rollout's rollback: revert every step that touched the schema, newest
 * dependents first (steps/graph.ts's rollbackOrder), holding for an operator
 * where a kind refuses to revert, then finish the rollout and compare the
 * catalog with the snapshot taken before it. Deterministic.
 */
import { condition } from '@temporalio/workflow';
import { rollbackOrder } from '../../steps/graph';
import { roleOf } from '../../steps';
import { revert } from './activities';
import type { RolloutRun } from './run';
import { now, setState, setStep, recordStep, stepInput } from './run';

export async function rollBack(run: RolloutRun, finalState: 'rolled_back' | 'cancelled' = 'rolled_back'): Promise<void> {
  setState(run, 'rolling_back');
  run.audit.record('rollback_started', undefined, undefined, { reason: run.rollbackReason });
  // its row before the reverts' own (revertStep writes step_reverted itself); runs before live states did not wait
  if (run.liveStates) await run.audit.drain();
  const order = rollbackOrder(run.graph, run.touched);
  for (const id of order) {
    const g = run.graph.find((x) => x.id === id)!;
    if (roleOf(g.kind) === 'contract') continue; // never started unless everything else succeeded
    setStep(run, id, { state: 'reverting' });
    for (;;) {
      const reverted = await revert.revertStep({ ...stepInput(run, g), actor: run.rollbackBy ?? run.input.actor });
      if (reverted.held === undefined) break;
      // the kind refused to revert (createTable: someone else's data): hold for an operator, `retry` asks again
      // counted before 'held' shows: a retry sent while the hold is being recorded is not lost
      const seen = run.retries;
      run.lastError = `step "${id}": revert held: ${reverted.held}`;
      setState(run, 'held', id);
      await recordStep(run, g, 'held', { reason: reverted.held });
      setStep(run, id, { error: run.lastError });
      await condition(() => run.retries > seen);
      setStep(run, id, { state: 'reverting', error: undefined });
      setState(run, 'rolling_back');
    }
    setStep(run, id, { state: 'reverted', finishedAt: new Date(now()).toISOString() });
  }
  for (const s of run.steps.values()) if (s.state === 'pending') setStep(run, s.id, { state: 'skipped' });
  const finished = await revert.finishRollout({
    rolloutId: run.begun!.rolloutId,
    workflowId: run.workflowId,
    state: finalState === 'cancelled' ? 'cancelled' : 'rolled_back',
    reason: run.rollbackReason ?? undefined,
    actor: run.input.actor,
  });
  run.catalog = finished.catalog;
  setState(run, finalState === 'cancelled' ? 'cancelled' : 'rolled_back');
}
