import type { StepKindModule } from '../types';
import { formatDuration } from '../../core/common/duration';
import { soakStep } from './schema';

/** The checks again every `every` for `duration`; any breach rolls back (or holds). */
export const soak: StepKindModule<typeof soakStep> = {
  kind: 'soak',
  schema: soakStep,
  role: 'soak',
  describe: (step) => ({
    forward: `re-run ${step.checks.length} check(s) every ${formatDuration(step.every)} for ${formatDuration(step.duration)}; any breach: ${step.onFailure}`,
    rollback: 'nothing (read-only)',
    lock: 'none (read-only queries)',
    online: true,
  }),
  soak: (step) => ({ checks: step.checks, onFailure: step.onFailure, durationMs: step.duration, everyMs: step.every }),
};
