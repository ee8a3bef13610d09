import type { StepKindModule } from '../types';
import { dropColumnStep } from './schema';

/** Hidden from the new version at expose, dropped for good at contract; meanwhile `down` fills it for inserts that leave it out. */
export const dropColumn: StepKindModule<typeof dropColumnStep> = {
  kind: 'dropColumn',
  schema: dropColumnStep,
  role: 'schema',
  describe: (step) => ({
    forward: `hide column ${step.column} from the new version's view${step.down ? `; a trigger sets it to (${step.down}) on inserts that leave it NULL (the new version's)` : ''}; drop column ${step.column} at contract`,
    rollback: step.down
      ? `drop the trigger; the column was never gone`
      : "nothing to undo: the column is still there (expose's rollback shows it again)",
    lock: step.down
      ? 'SHARE ROW EXCLUSIVE (trigger creation, instant); ACCESS EXCLUSIVE at contract (catalog only, instant)'
      : 'none until contract: ACCESS EXCLUSIVE (catalog only, instant)',
    online: true,
  }),
  shape: (step) => ({ dropped: [step.column] }),
};
