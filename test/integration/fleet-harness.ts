import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';
import YAML from 'yaml';
import { NativeConnection } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { createPool } from '../../db/pool';
import type { FleetWorkers } from '../../worker/fleet/workers';
import { createFleetWorkers } from '../../worker/fleet/workers';
import { loadTargetsFile } from '../../worker/fleet/targets-file';
import type { FleetSpec } from '../../steps/fleet-spec';
import { parseFleetSpec } from '../../steps/fleet-spec';
import { startFleet } from '../../client/fleet/start';
import type { FleetProgress } from '../../core/fleet/progress';
import { progressQuery } from '../../workflows/definitions';
import { createStagefillWorker } from '../../worker/run';
import { env, pool, client, testLogger, unique, waitFor, connectionFor } from './harness';
import { workerConfigFor } from './own-worker';

/**
 * A fleet of tenant databases made with CREATE DATABASE in the run's
 * PostgreSQL, a targets file naming them, and the workers that serve them: one
 * ordinary worker on the file's fleet queue (every workflow: the fleet, the
 * targets' runs and changes) and the fleet workers (activities only: one per
 * target on `<queue>@<target>`, the control queue).
 */
export interface Tenants {
  names: string[];
  urls: Record<string, string>;
  pools: Record<string, Pool>;
  /** The pool of the target named `name` (throws for a name that is not a tenant). */
  db(name: string): Pool;
  targetsFile: string;
  taskQueue: string;
  stop(): Promise<void>;
}

/** `database` on the server of `serverUrl` (default: the run's PostgreSQL). */
export function tenantUrl(database: string, serverUrl = env().databaseUrl): string {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A tenant to make: its target name, the server its database lives on (default: the run's PostgreSQL), its tags. */
export interface TenantOf {
  name: string;
  serverUrl?: string;
  tags: Record<string, string>;
}

/** `count` tenant databases t0..t{count-1}, tagged by `tags(i)`, a targets file for them, and workers serving them. */
export function startTenants(count: number, dir: string, tags: (i: number) => Record<string, string>): Promise<Tenants> {
  return startTenantsOf(
    Array.from({ length: count }, (_, i) => ({ name: `t${i}`, tags: tags(i) })),
    dir,
  );
}

/**
 * The tenants' databases (CREATE DATABASE on each one's server), a targets file for them and, unless
 * `inProcessWorkers` is false (a test that runs `stagefill worker` as a process), the workers serving them.
 */
export async function startTenantsOf(tenants: TenantOf[], dir: string, opts: { inProcessWorkers?: boolean } = {}): Promise<Tenants> {
  const prefix = unique('fl').toLowerCase();
  const names = tenants.map((x) => x.name);
  const urls: Record<string, string> = {};
  const pools: Record<string, Pool> = {};
  const file: Record<string, unknown> = {};
  const admins = new Map<string, Pool>();
  const adminOf = (serverUrl: string | undefined) => {
    if (!serverUrl) return pool;
    let p = admins.get(serverUrl);
    if (!p) admins.set(serverUrl, (p = createPool({ url: serverUrl, max: 1, applicationName: 'stagefill-test' })));
    return p;
  };
  for (const x of tenants) {
    const database = `${prefix}_${x.name}`;
    await adminOf(x.serverUrl).query(`CREATE DATABASE "${database}"`);
    const url = tenantUrl(database, x.serverUrl);
    urls[x.name] = url;
    pools[x.name] = createPool({ url, max: 2, applicationName: 'stagefill-test' });
    file[x.name] = { url, tags: x.tags };
  }
  const targetsFile = path.join(dir, `${prefix}-targets.yaml`);
  fs.writeFileSync(targetsFile, YAML.stringify(file));
  const taskQueue = unique('fleetq');
  const dropAll = async () => {
    for (const p of Object.values(pools)) await p.end().catch(() => {});
    for (const x of tenants)
      await adminOf(x.serverUrl)
        .query(`DROP DATABASE IF EXISTS "${prefix}_${x.name}" WITH (FORCE)`)
        .catch(() => {});
    for (const p of admins.values()) await p.end().catch(() => {});
  };
  const db = (name: string) => {
    const p = pools[name];
    if (!p) throw new Error(`no tenant named ${name}`);
    return p;
  };
  if (opts.inProcessWorkers === false) return { names, urls, pools, db, targetsFile, taskQueue, stop: dropAll };
  // one workflow Worker for every target (as in `stagefill worker`): a Worker per target running workflows crashed
  // Node under load; the fleet workers below run activities only
  const mainSw = await createStagefillWorker({
    config: workerConfigFor(taskQueue),
    logger: testLogger,
    workflowBundlePath: env().bundle,
  });
  const mainRunning = mainSw.run();
  const main = {
    stop: async () => {
      mainSw.shutdown();
      await mainRunning;
    },
  };
  const config = workerConfigFor(taskQueue, { STAGEFILL_FLEET_MAX_CONNECTIONS: String(4 * tenants.length) });
  const connection = await NativeConnection.connect({ address: env().address });
  let fleet: FleetWorkers;
  try {
    fleet = await createFleetWorkers({
      config,
      logger: testLogger,
      connection,
      targets: loadTargetsFile(targetsFile),
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
    db,
    targetsFile,
    taskQueue,
    async stop() {
      fleet.shutdown();
      await running.catch(() => {});
      await connection.close().catch(() => {});
      await main.stop();
      await dropAll();
    },
  };
}

/** A table `id bigint primary key, n int, v int` with `rows` rows (v = id) in every tenant; `tweak` runs after in the one named. */
export async function makeTenantTables(t: Tenants, table: string, rows: number): Promise<void> {
  for (const n of t.names) {
    await t.db(n).query(`CREATE TABLE public."${table}" (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, v int)`);
    await t.db(n).query(`INSERT INTO public."${table}" (id, v) SELECT g, g FROM generate_series(1, $1) g`, [rows]);
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

/** addColumn w = v * 2 with a backfill, a gate that no row has a negative v (unless `gate: false`), then (optionally) an approval, then contract. */
export function doubleChange(table: string, opts: { approval?: boolean; chunkSize?: number; gate?: boolean } = {}) {
  return {
    kind: 'rollout',
    name: unique('dbl'),
    table: `public.${table}`,
    rollbackWindow: '1s',
    steps: [
      { kind: 'addColumn', column: 'w', type: 'bigint', up: 'v * 2', backfill: { chunkSize: opts.chunkSize ?? 10 } },
      ...(opts.gate === false
        ? []
        : [
            {
              kind: 'gate',
              checks: [{ name: 'no negative v', sql: `SELECT count(*) FROM public.${table} WHERE v < 0`, expect: { eq: 0 } }],
            },
          ]),
      ...(opts.approval ? [{ kind: 'approval', timeout: '10m' }] : []),
      { kind: 'contract' },
    ],
  };
}
