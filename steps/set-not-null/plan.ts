import type { StepKindModule } from '../types';
import { setNotNullStep } from './schema';

/** NOT NULL without a long lock: a NOT VALID check, validated while writes go on, makes SET NOT NULL catalog-only. */
export const setNotNull: StepKindModule<typeof setNotNullStep> = {
  kind: 'setNotNull',
  schema: setNotNullStep,
  role: 'schema',
  describe: (step) => ({
    forward: `ADD CONSTRAINT CHECK (${step.column} IS NOT NULL) NOT VALID, then VALIDATE (no long lock), then SET NOT NULL`, // lint-layers: ok (plan text, not SQL)
    rollback: `DROP NOT NULL and drop the check`,
    lock: 'ACCESS EXCLUSIVE (catalog only, instant); SHARE UPDATE EXCLUSIVE while VALIDATE scans (reads and writes go on)',
    online: true,
  }),
};
