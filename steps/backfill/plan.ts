import type { StepKindModule } from '../types';
import type { BackfillSpec } from '../../core/common/fields';
import { oneLine } from '../../core/common/text';
import { backfillStep } from './schema';
import { qualifiedName } from '../../core/common/table-name';
import { keyLabel } from '../../core/backfill/keys';

/** A chunked backfill as a child workflow: the step's fields, the rollout's table and name by default. */
export const backfill: StepKindModule<typeof backfillStep> = {
  kind: 'backfill',
  schema: backfillStep,
  role: 'backfill',
  describe: (step, ctx) => ({
    forward: `backfill ${qualifiedName(step.table ?? ctx.table)} in chunks of ${step.chunkSize} on ${keyLabel(step.key)}, ${step.parallelism} lanes: ${oneLine(step.transform)}`,
    rollback: 'nothing to undo in the schema (the rows written belong to columns a later rollback drops)',
    lock: 'ROW EXCLUSIVE (the rows of one chunk at a time)',
    online: true,
  }),
  backfill: (step, ctx): BackfillSpec => {
    const { id: _id, dependsOn: _deps, kind: _kind, ...fields } = step;
    void _id;
    void _deps;
    void _kind;
    return { ...fields, kind: 'backfill', table: ctx.table, name: step.name ?? `${ctx.rolloutName}.${ctx.id}` };
  },
};
