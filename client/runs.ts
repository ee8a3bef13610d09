import type { Spec, BackfillSpec } from '../spec';
import type { StagefillConnection } from './connection';
import { startBackfill, StartedRun, StartBackfillOptions } from './operations';

/** Starts whatever kind of run the spec describes. */
export async function startRun(conn: StagefillConnection, spec: Spec, opts: StartBackfillOptions): Promise<StartedRun> {
  switch (spec.kind) {
    case 'backfill':
      return startBackfill(conn, spec as BackfillSpec, opts);
    default:
      throw new Error(`kind: "${spec.kind}" runs are not available in this build`);
  }
}
