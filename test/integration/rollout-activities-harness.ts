import { ApplicationFailure } from '@temporalio/common';
import type { StepInput, RolloutActivities } from '../../activities/rollout/index';
import { createRolloutActivities } from '../../activities/rollout/index';
import type { RolloutSpec, RolloutSpecInput } from '../../steps/spec';
import { parseRolloutSpec } from '../../steps/spec';
import { planRollout } from '../../steps/describe';
import { normalizeGraph } from '../../steps/graph';
import { pool, unique, testLogger, useStack } from './harness';

/**
 * The rollout activities called as plain functions against the real Postgres (the rollout-activities-*.test.ts
 * files): a rollout begun as the workflow begins it, each step's input as the workflow builds it, and the checks
 * those tests repeat (catalog unchanged, a non-retryable failure, apply/revert exactly once).
 */

/** The file's activities, over the harness's pool. */
export let acts: RolloutActivities;

/** Call once at the top of a test file: `useStack()` and the rollout activities over its pool. */
export function useActivities(): void {
  useStack();
  beforeAll(() => {
    acts = createRolloutActivities({ pool, logger: testLogger });
  });
}

export interface Started {
  spec: RolloutSpec;
  workflowId: string;
  rolloutId: number;
  baselines: Record<string, string | null>;
  input(stepId: string, table?: string): StepInput;
}

/** A rollout over `table` with `steps`, begun as the workflow would begin it. */
export async function begin(
  table: string,
  steps: RolloutSpecInput['steps'],
  opts: { tables?: string[]; workflowId?: string } = {},
): Promise<Started> {
  const spec = parseRolloutSpec({ kind: 'rollout', name: unique('ro'), table, steps });
  const graph = normalizeGraph(spec.steps, spec.table);
  const allSteps = graph.map((g, n) => ({ id: g.id, table: g.table, step: spec.steps[n]! }));
  const workflowId = opts.workflowId ?? unique('stagefill-rollout:wf');
  const plan = planRollout(spec);
  const r = await acts.beginRollout({
    workflowId,
    name: spec.name,
    spec,
    tables: opts.tables ?? plan.tables,
    plan: plan.steps,
    actor: 'test',
  });
  return {
    spec,
    workflowId,
    rolloutId: r.rolloutId,
    baselines: r.baselines,
    input: (stepId, overrideTable) => {
      const s = allSteps.find((x) => x.id === stepId);
      if (!s) throw new Error(`no step ${stepId}`);
      return {
        rolloutId: r.rolloutId,
        workflowId,
        rolloutName: spec.name,
        stepId,
        step: s.step,
        table: overrideTable ?? s.table,
        allSteps,
        actor: 'test',
      };
    },
  };
}

export async function expectCatalogUnchanged(r: Started): Promise<void> {
  const diff = await acts.catalogDiff({ rolloutId: r.rolloutId });
  expect(diff.flatMap((d) => d.diff)).toEqual([]);
  expect(diff.every((d) => d.equal)).toBe(true);
}

export async function expectFailure(p: Promise<unknown>, type: string, ...messageParts: string[]): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  const f = err as ApplicationFailure;
  expect(f.type).toBe(type);
  expect(f.nonRetryable).toBe(true);
  for (const part of messageParts) expect(f.message).toContain(part);
  return f;
}

/** Apply, apply again (a no-op), revert, revert again (a no-op); `between` runs while applied. */
export async function roundTrip(r: Started, stepId: string, between?: () => Promise<void>): Promise<void> {
  const first = await acts.applyStep(r.input(stepId));
  expect(first.alreadyDone).toBe(false);
  expect((await acts.applyStep(r.input(stepId))).alreadyDone).toBe(true);
  await between?.();
  expect(await acts.revertStep(r.input(stepId))).toEqual({ alreadyReverted: false });
  expect(await acts.revertStep(r.input(stepId))).toEqual({ alreadyReverted: true });
}

export async function columnsOf(table: string): Promise<{ name: string; type: string; notNull: boolean }[]> {
  const [schema, name] = table.split('.');
  const { rows } = await pool.query(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull"
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [schema, name],
  );
  return rows;
}

export async function stagefillFunctions(): Promise<string[]> {
  const { rows } = await pool.query(
    `SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'stagefill'`,
  );
  return rows.map((x) => x.proname as string);
}
