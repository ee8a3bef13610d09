import type { FleetSpec } from '../../steps/fleet-spec';
import { fleetWorkflowId } from '../../core/fleet/ids';
import { SA } from '../../workflows/search-attributes';
import type { FleetWorkflowInput } from '../../workflows/fleet/fleet';
import type { StagefillConnection } from '../connection';
import { startWorkflow, type StartedRun } from '../start';
import { defaultActor } from '../operations';

/**
 * Starts a fleet on the connection's task queue: the fleet workflow runs there,
 * reads its targets from the fleet workers (`<queue>#fleet`) and runs each
 * target's change on `<queue>@<target>`.
 */
export async function startFleet(conn: StagefillConnection, spec: FleetSpec, opts: { actor?: string } = {}): Promise<StartedRun> {
  const workflowId = fleetWorkflowId(spec.name);
  const actor = opts.actor ?? defaultActor();
  const input: FleetWorkflowInput = { spec, actor };
  return startWorkflow(conn, {
    workflowType: 'fleetWorkflow',
    workflowId,
    input,
    memo: {
      summary: { kind: 'fleet', change: `${spec.change.kind} ${spec.change.name}`, waves: spec.waves.map((w) => w.name) },
      startedBy: actor,
    },
    searchAttributes: [
      { key: SA.kind, value: 'fleet' },
      { key: SA.state, value: 'starting' },
      { key: SA.name, value: spec.name },
      { key: SA.fleet, value: spec.name },
    ],
    alreadyRunning: `fleet "${spec.name}" is already running as ${workflowId}; watch it, roll it back, or wait for it`,
  });
}
