import type { Pool } from 'pg';
import { addComputedColumn } from '../steps/add-column/sql';
import { dropColumn } from '../db/rollout/ddl';
import { dropStepTrigger, stepTriggerName } from '../db/rollout/triggers';
import { TABLE } from './sql';

/**
 * The dual-write trigger a rollout's addColumn step installs, installed by the
 * rollout's own code (steps/add-column/sql.ts addComputedColumn): a new column and a
 * BEFORE INSERT OR UPDATE trigger that sets it from `up` on every write.
 */
const COLUMN = 'abalance_dual';
const UP = 'abalance::bigint * 100';
const TRIGGER = stepTriggerName(0, TABLE, 'bench-dual-write', 2, 0);

export const TRIGGER_SOURCE =
  "The trigger is the rollout's own: `addComputedColumn` from steps/add-column/sql.ts (the addColumn step's effect) adds " +
  `\`${COLUMN} bigint\` to pgbench_accounts with a \`BEFORE INSERT OR UPDATE ... FOR EACH ROW\` plpgsql trigger doing ` +
  `\`NEW.${COLUMN} := (SELECT (${UP}) FROM (SELECT (NEW).*) AS _r)\`; "without" is the same table with neither.`;

export async function installDualWriteTrigger(pool: Pool): Promise<void> {
  await addComputedColumn(pool, { table: TABLE, column: COLUMN, type: 'bigint', up: UP, trigger: TRIGGER });
}

export async function removeDualWriteTrigger(pool: Pool): Promise<void> {
  await dropStepTrigger(pool, TABLE, TRIGGER);
  await dropColumn(pool, TABLE, COLUMN);
}
