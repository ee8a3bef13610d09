import fs from 'node:fs';
import path from 'node:path';
import { Pool } from 'pg';
import YAML from 'yaml';
import { NativeConnection } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { createPool } from '../../db/pool';
import { createFleetWorkers, FleetWorkers } from '../../worker/fleet/workers';
import { loadTargetsFile } from '../../worker/fleet/targets-file';
import { parseFleetSpec, FleetSpec } from '../../steps/fleet-spec';
import { startFleet } from '../../client/fleet/start';
import type { FleetProgress } from '../../core/fleet/progress';
import { progressQuery } from '../../workflows/definitions';
import { createStagefillWorker } from '../../worker/run';
import { env, pool, client, testLogger, unique, waitFor, connectionFor } from './harness';
import { workerConfigFor } from './own-worker';

/**
 * A fleet of tenant databases made with CREATE DATABASE in the run's
 * PostgreSQL, a targets file naming them, and the workers that serve them: one
 * ordinary worker on the file's fleet queue (the fleet workflow) and the fleet
 * workers (a Worker per target on `<queue>@<target>`, the control queue).
 */
export interface Tenants {
  names: string[];
  urls: Record<string, string>;
  pools: Record<string, Pool>;
  targetsFile: string;
  taskQueue: string;
  stop(): Promise<void>;
}

export function tenantUrl(database: string): string {
  const u = new URL(env().databaseUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

/** `count` tenant databases t0..t{count-1}, tagged by `tags(i)`, a targets file for them, and workers serving them. */
export async function startTenants(count: number, dir: string, tags: (i: number) => Record<string, string>): Promise<Tenants> {
  const prefix = unique('fl').toLowerCase();
  const names = Array.from({ length: count }, (_, i) => `t${i}`);
  const urls: Record<string, string> = {};
  const pools: Record<string, Pool> = {};
  const file: Record<string, unknown> = {};
  for (const [i, n] of names.entries()) {
    const db = `${prefix}_${n}`;
    await pool.query(`CREATE DATABASE "${db}"`);
    urls[n] = tenantUrl(db);
    pools[n] = createPool({ url: urls[n], max: 2, applicationName: 'stagefill-test' });
    file[n] = { url: urls[n], tags: tags(i) };
  }
  const targetsFile = path.join(dir, `${prefix}-targets.yaml`);
  fs.writeFileSync(targetsFile, YAML.stringify(file));
  const taskQueue = unique('fleetq');
  // a workflow activation cut off by the sandbox's timeout crashes Node in its worker thread ("async hook stack has
  // become corrupted", nodejs/node#38503) instead of failing the task; on a loaded 2-core machine with ten Workers in
  // one process an activation can take seconds: debugMode lifts that timeout (the SDK exposes no other way)
  const overrides = { debugMode: true };
  const mainSw = await createStagefillWorker({
    config: workerConfigFor(taskQueue),
    logger: testLogger,
    workflowBundlePath: env().bundle,
    overrides,
  });
  const mainRunning = mainSw.run();
  const main = {
    stop: async () => {
      mainSw.shutdown();
      await mainRunning;
    },
  };
  const config = workerConfigFor(taskQueue, { STAGEFILL_FLEET_MAX_CONNECTIONS: String(4 * count) });
  const connection = await NativeConnection.connect({ address: env().address });
  let fleet: FleetWorkers;
  try {
    fleet = await createFleetWorkers({
      config,
      logger: testLogger,
      connection,
      targets: loadTargetsFile(targetsFile),
      workflowBundlePath: env().bundle,
      overrides,
    });
  } catch (err) {
    await main.stop();
    await connection.close();
    throw err;
  }
  const running = fleet.run();
  return {
    names,
    urls,
    pools,
    targetsFile,
    taskQueue,
    async stop() {
      fleet.shutdown();
      await running.catch(() => {});
      await connection.close().catch(() => {});
      await main.stop();
      for (const p of Object.values(pools)) await p.end().catch(() => {});
      for (const n of names) await pool.query(`DROP DATABASE IF EXISTS "${prefix}_${n}" WITH (FORCE)`).catch(() => {});
    },
  };
}

/** A table `id bigint primary key, n int, v int` with `rows` rows (v = id) in every tenant; `tweak` runs after in the one named. */
export async function makeTenantTables(t: Tenants, table: string, rows: number): Promise<void> {
  for (const n of t.names) {
    await t.pools[n].query(`CREATE TABLE public."${table}" (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, v int)`);
    await t.pools[n].query(`INSERT INTO public."${table}" (id, v) SELECT g, g FROM generate_series(1, $1) g`, [rows]);
  }
}

/** Starts the fleet (`kind: fleet` and a unique name added) through the client library, on the tenants' queue. */
export async function startFleetSpec(t: Tenants, spec: Record<string, unknown>): Promise<{ spec: FleetSpec; handle: WorkflowHandle }> {
  const parsed = parseFleetSpec({ kind: 'fleet', name: unique('fleet'), ...spec });
  const run = await startFleet(connectionFor(client, t.taskQueue), parsed, { actor: 'test' });
  return { spec: parsed, handle: client.workflow.getHandle(run.workflowId) };
}

export async function fleetProgress(handle: WorkflowHandle): Promise<FleetProgress> {
  return (await handle.query(progressQuery)) as FleetProgress;
}

export function waitForFleet(
  handle: WorkflowHandle,
  what: string,
  fn: (p: FleetProgress) => boolean,
  timeoutMs = 240_000,
): Promise<FleetProgress> {
  return waitFor(
    what,
    async () => {
      const p = await fleetProgress(handle);
      return fn(p) && p;
    },
    timeoutMs,
    500,
  );
}
