// The workflow bundle's entry: every workflow type a stagefill worker runs.
export { backfillWorkflow } from './backfill';
export { rolloutWorkflow } from './rollout';
