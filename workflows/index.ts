// The workflow bundle's entry: every workflow type a stagefill worker runs.
import { setWorkflowOptions } from '@temporalio/workflow';
import { backfillWorkflow } from './backfill';
import { rolloutWorkflow } from './rollout';

/*
 * Worker Versioning (used when the worker runs with STAGEFILL_DEPLOYMENT, see
 * docs/operations.md "Upgrading stagefill"): both types AUTO_UPGRADE. A
 * rollout waits for days (soaks, approvals, rollback windows) and a backfill
 * runs for hours; pinning them would keep every old build polling until the
 * last of them ends. Their workflow code changes go behind patched() instead,
 * and the replay suite (test/replay) proves every recorded history of every
 * earlier build still replays. Ignored by unversioned workers.
 */
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, rolloutWorkflow);
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, backfillWorkflow);

export { backfillWorkflow, rolloutWorkflow };
