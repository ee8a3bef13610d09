import { qualifiedName } from './table-name';

/** Workflow ids derive from what the user named, so a second start of the same thing finds the first. */
export function backfillWorkflowId(table: string, name: string): string {
  return `stagefill-backfill:${qualifiedName(table)}:${name}`;
}

export function rolloutWorkflowId(name: string): string {
  return `stagefill-rollout:${name}`;
}
