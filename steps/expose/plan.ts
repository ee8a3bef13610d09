import type { StepKindModule } from '../types';
import { viewSchemaName } from '../../core/rollout/object-names';
import { exposeStep } from './schema';

/** Views of the new (and the legacy) shape, and the read-path flag pointing at the new version. */
export const expose: StepKindModule<typeof exposeStep> = {
  kind: 'expose',
  schema: exposeStep,
  role: 'schema',
  startsRollbackWindow: true,
  describe: (step, ctx) => ({
    forward: `create view schema ${viewSchemaName(ctx.table, step.version)} and set the read-path flag of ${ctx.table} to v${step.version}${step.percent < 100 ? ` for ${step.percent}% of readers` : ''}`,
    rollback: `drop the v${step.version} views and set the flag back to the previous version`,
    lock: 'ACCESS SHARE (view creation, instant)',
    online: true,
  }),
};
