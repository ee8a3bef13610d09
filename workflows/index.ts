// The workflow bundle's entry: every workflow type a stagefill worker runs.
export { backfillWorkflow } from './backfill/workflow';
export { rolloutWorkflow } from './rollout/workflow';
export { fleetWorkflow } from './fleet/fleet';
export { fleetTargetWorkflow } from './fleet/target';
export { fleetTargetsWorkflow } from './fleet/served';

/*
 * Worker Versioning (a worker with STAGEFILL_DEPLOYMENT; docs/operations.md
 * "Upgrading stagefill"): both types run AUTO_UPGRADE, the versioned worker's
 * default behaviour (worker/run.ts). A rollout waits for days (soaks,
 * approvals, rollback windows) and a backfill runs for hours; pinning them
 * would keep every old build polling until the last of them ends. Their
 * workflow code changes go behind patched() instead, and the replay suite
 * (test/replay) proves the recorded histories of earlier builds still replay.
 * Not declared here with setWorkflowOptions: an unversioned worker (the
 * default) rejects a workflow that declares a versioning behaviour.
 */
