import type { StepKindModule } from '../types';
import { dropIndexStep } from './schema';

/** Deferred: the index stays while a rollback is possible, and goes CONCURRENTLY at contract. */
export const dropIndex: StepKindModule<typeof dropIndexStep> = {
  kind: 'dropIndex',
  schema: dropIndexStep,
  role: 'schema',
  describe: (step) => ({
    forward: `check that index ${step.name} exists (it stays until contract, so a rollback needs nothing); at contract DROP INDEX CONCURRENTLY ${step.name}`,
    rollback: 'nothing: the index was never dropped',
    lock: 'none until contract; then SHARE UPDATE EXCLUSIVE while DROP INDEX CONCURRENTLY waits out readers (reads and writes go on)',
    online: true,
  }),
};
