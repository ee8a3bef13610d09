import type { FleetSpec } from '../../steps/fleet-spec';
import type { FleetTarget } from '../../core/fleet/waves';
import { createPool } from '../../db/pool';
import { queryCatalogNames } from '../../db/fleet/catalog';
import { queriedTargets, pinWaves, TargetsQueryError } from '../../core/fleet/query';
import { WavePlanError } from '../../core/fleet/waves';
import { targetsOfFile } from './targets';
import { UsageError } from '../errors';

/** Where a fleet's targets are read from: the targets file given, or else (with a connection) every worker process serving fleets on the task queue. */
export interface TargetsSource {
  file?: string;
  /** The targets every worker process serves (names and tags), asked on Temporal. */
  workers?: () => Promise<FleetTarget[]>;
}

/** The served targets of `source`: the file's (with their URLs), else the workers' (without). */
async function servedOf(source: TargetsSource): Promise<{ targets: (FleetTarget & { url?: string })[]; where: string }> {
  if (source.file || !source.workers) return { targets: targetsOfFile(source.file), where: source.file ?? '' };
  return { targets: await source.workers(), where: 'the worker processes on the task queue' };
}

/**
 * The targets a fleet runs on: every target served (the targets file's, or
 * without one every worker process's), or with `targets.query` the ones the
 * catalog query names (a name no one serves is an error naming it).
 * Connection strings stay here, on the client.
 */
export async function fleetTargetsOf(spec: FleetSpec, source: TargetsSource): Promise<(FleetTarget & { url?: string })[]> {
  const { targets: served, where: servedWhere } = await servedOf(source);
  const q = spec.targets;
  if (!q) return served;
  let url: string | undefined;
  let where: string;
  if (q.catalog !== undefined) {
    if (!source.file)
      throw new UsageError(
        `targets.catalog: the catalog target "${q.catalog}" is read with its URL from a targets file; pass --targets <file> (one that has "${q.catalog}"), or give catalogEnv`,
      );
    url = served.find((t) => t.name === q.catalog)?.url;
    if (!url)
      throw new UsageError(
        `targets.catalog: no target named "${q.catalog}" in ${source.file}; name a target of the targets file, or give catalogEnv`,
      );
    where = `target ${q.catalog}`;
  } else {
    url = process.env[q.catalogEnv!];
    if (!url) throw new UsageError(`targets.catalogEnv: ${q.catalogEnv} is not set; set it to the catalog database's URL`);
    where = `$${q.catalogEnv}`;
  }
  const pool = createPool({ url, max: 1, applicationName: 'stagefill-fleet-catalog' });
  let names: unknown[];
  try {
    names = await queryCatalogNames(pool, q.query, q.timeoutMs);
  } catch (err) {
    throw new UsageError(`targets.query: failed on the catalog (${where}): ${(err as Error).message}`);
  } finally {
    await pool.end().catch(() => {});
  }
  try {
    return queriedTargets(served, names, servedWhere);
  } catch (err) {
    if (err instanceof TargetsQueryError) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * The spec `start` hands the workflow: with `targets.query`, the query run
 * now and every wave pinned to the names it takes, so the workflow's history
 * holds names only and the fleet is the one `plan` showed, whatever the
 * catalog says tomorrow. Without a query, the spec as it is.
 */
export async function resolveFleetSpec(spec: FleetSpec, source: TargetsSource): Promise<FleetSpec> {
  if (!spec.targets) return spec;
  const targets = await fleetTargetsOf(spec, source);
  try {
    return {
      ...spec,
      targets: { ...spec.targets, names: targets.map((t) => t.name) },
      waves: pinWaves(targets, spec.waves),
    };
  } catch (err) {
    if (err instanceof WavePlanError) throw new UsageError(`${err.message} (among the targets the catalog query returned)`);
    throw err;
  }
}
