import type { StepKindModule } from '../types';
import { dropTableStep } from './schema';

/** The new version stops seeing the table at expose; DROP TABLE at contract. */
export const dropTable: StepKindModule<typeof dropTableStep> = {
  kind: 'dropTable',
  schema: dropTableStep,
  role: 'schema',
  describe: (_step, ctx) => ({
    forward: `check nothing else depends on ${ctx.table}; the new version's view schema holds no view of it (expose); drop table ${ctx.table} and its view schemas at contract`,
    rollback: "nothing to undo: the table is still there (expose's rollback shows it again)",
    lock: 'none until contract: ACCESS EXCLUSIVE (drop table, instant)',
    online: true,
  }),
  shape: () => ({ isTableHidden: true }),
};
