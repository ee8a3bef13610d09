/**
 * The targets of every worker process serving fleets on a task queue,
 * gathered on Temporal: any process names the processes polling the shared
 * control queue (`<queue>#fleet`), then each process answers for the targets
 * of its own file on its own queue (`<queue>#fleet:<process>`), and their
 * tables' shapes are read by a process serving each. So worker processes
 * with different targets files (one per cluster, say) make one fleet.
 * Deterministic: every answer comes from an activity.
 */
import { proxyActivities, log, workflowInfo, patched } from '@temporalio/workflow';
import type { FleetControlActivities } from '../../activities/fleet/control';
import { fleetControlQueue, fleetProcessQueue } from '../../core/fleet/ids';
import type { GatheredTargets, ProcessAnswer } from '../../core/fleet/served';
import { mergeServed, assignToProcesses } from '../../core/fleet/served';
import { causeMessage } from '../failure-cause';

/** A target's table's shape, as the control activity reads it. */
type TargetTableShape = Awaited<ReturnType<FleetControlActivities['fleetTableShapes']>>[number];

/** A process that picks up nothing on its own queue for this long is taken as gone: Temporal lists a stopped process's poller for a while (worker/fleet/processes.ts). */
const PROCESS_ANSWER_WITHIN = '15 seconds';

const processControl = (baseQueue: string, process: string) =>
  proxyActivities<FleetControlActivities>({
    taskQueue: fleetProcessQueue(baseQueue, process),
    scheduleToStartTimeout: PROCESS_ANSWER_WITHIN,
    startToCloseTimeout: '2 minutes',
    retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 3 },
  });

/**
 * Every target served on `baseQueue`, from every worker process that serves
 * fleets there; a process that does not answer is listed with why (its
 * targets are not in the list). Throws when no process serves the control
 * queue within 5 minutes.
 */
export async function gatherServedTargets(baseQueue: string, opts: { probe?: boolean } = {}): Promise<GatheredTargets> {
  const control = proxyActivities<FleetControlActivities>({
    taskQueue: fleetControlQueue(baseQueue),
    scheduleToCloseTimeout: '5 minutes',
    startToCloseTimeout: '1 minute',
    retry: { initialInterval: '1s', maximumInterval: '20s' },
  });
  const processes = await control.fleetWorkerProcesses();
  const answers: ProcessAnswer[] = await Promise.all(
    processes.map(async (process): Promise<ProcessAnswer> => {
      try {
        const a = await processControl(baseQueue, process).fleetProcessTargets({ probe: opts.probe ?? false });
        return { process, targets: a.targets };
      } catch (err) {
        log.warn('a fleet worker process did not answer', { process, error: causeMessage(err) });
        return { process, error: `did not answer: ${causeMessage(err)}` };
      }
    }),
  );
  return mergeServed(answers);
}

/**
 * Patch: a target whose reading process does not answer (SIGKILLed since it answered for its targets: Temporal still
 * lists it) is read by another process serving it; before, its shape was that error, and a refusing fleet refused.
 */
export const SHAPES_FROM_ANOTHER_PROCESS = 'fleet-shapes-from-another-process';

/**
 * The shapes of `tables` in each of `names`, read by a process serving it. A process that does not answer hands its
 * targets to another process serving them; a target no process answered for carries the last error.
 */
export async function gatherTableShapes(
  baseQueue: string,
  gathered: GatheredTargets,
  tables: string[],
  names: string[],
): Promise<TargetTableShape[]> {
  const another = patched(SHAPES_FROM_ANOTHER_PROCESS);
  const silent = new Set<string>();
  const shapes: TargetTableShape[] = [];
  let left = names;
  while (left.length) {
    const parts = await Promise.all(
      [...assignToProcesses(gathered, left, silent)].map(async ([process, targets]) => {
        try {
          return { process, targets, shapes: await processControl(baseQueue, process).fleetTableShapes({ tables, targets }) };
        } catch (err) {
          return { process, targets, error: `worker process ${process} did not answer: ${causeMessage(err)}` };
        }
      }),
    );
    for (const p of parts) if (p.error !== undefined) silent.add(p.process);
    const again: string[] = [];
    for (const p of parts) {
      if (p.shapes) {
        shapes.push(...p.shapes);
        continue;
      }
      for (const target of p.targets) {
        const served = gathered.targets.find((t) => t.name === target);
        if (another && served?.workers.some((w) => !silent.has(w))) again.push(target);
        else shapes.push(...tables.map((table) => ({ target, table, shape: null, error: p.error })));
      }
    }
    left = again;
  }
  return shapes;
}

export interface FleetTargetsInput {
  /** Ask each process whether each of its targets' databases answers it. */
  probe?: boolean;
  /** Also read these tables' shapes in every target (`plan` of a fleet without a targets file). */
  tables?: string[];
}

export interface FleetTargetsResult extends GatheredTargets {
  shapes?: TargetTableShape[];
}

/** `stagefill targets` (and `plan` of a fleet) without a targets file: what every worker process serves, asked on Temporal. Short-lived. */
export async function fleetTargetsWorkflow(input: FleetTargetsInput = {}): Promise<FleetTargetsResult> {
  const baseQueue = workflowInfo().taskQueue;
  const gathered = await gatherServedTargets(baseQueue, { probe: input.probe });
  if (!input.tables?.length) return gathered;
  const shapes = await gatherTableShapes(
    baseQueue,
    gathered,
    input.tables,
    gathered.targets.map((t) => t.name),
  );
  return { ...gathered, shapes };
}
