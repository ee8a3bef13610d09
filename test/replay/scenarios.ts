import type { Pool } from 'pg';
import type { Client } from '@temporalio/client';
import { backfillScenarios } from './backfill-scenarios';
import { rolloutScenarios } from './rollout-scenarios';

/**
 * A real run whose history is worth keeping: `run` drives it against the
 * test stack (a worker already polls `taskQueue`) until it closes and returns
 * its workflow id. `npm run record-histories` saves every run of it (a
 * continue-as-new chain gives several) as test/replay/histories/<name>[.<n>].json.
 */
export interface Scenario {
  name: string;
  run(ctx: ScenarioContext): Promise<string>;
}

export interface ScenarioContext {
  pool: Pool;
  client: Client;
  taskQueue: string;
}

// Adding a workflow path: write its scenario (see backfill-scenarios.ts), list it here, run `npm run record-histories`.
export const scenarios: Scenario[] = [...backfillScenarios, ...rolloutScenarios];
