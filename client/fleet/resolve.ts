import type { FleetSpec } from '../../steps/fleet-spec';
import type { TargetConfig } from '../../activities/fleet/control';
import { createPool } from '../../db/pool';
import { queryCatalogNames } from '../../db/fleet/catalog';
import { queriedTargets, pinWaves, TargetsQueryError } from '../../core/fleet/query';
import { WavePlanError } from '../../core/fleet/waves';
import { targetsOfFile } from './targets';
import { UsageError } from '../errors';

/**
 * The targets a fleet runs on: every target of the targets file, or with
 * `targets.query` the ones the catalog query names (a name the file lacks is
 * an error naming it). Connection strings stay here, on the client.
 */
export async function fleetTargetsOf(spec: FleetSpec, targetsFile: string | undefined): Promise<TargetConfig[]> {
  const served = targetsOfFile(targetsFile);
  const q = spec.targets;
  if (!q) return served;
  let url: string | undefined;
  let where: string;
  if (q.catalog !== undefined) {
    url = served.find((t) => t.name === q.catalog)?.url;
    if (!url)
      throw new UsageError(
        `targets.catalog: no target named "${q.catalog}" in ${targetsFile}; name a target of the targets file, or give catalogEnv`,
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
    return queriedTargets(served, names, targetsFile!);
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
export async function resolveFleetSpec(spec: FleetSpec, targetsFile: string | undefined): Promise<FleetSpec> {
  if (!spec.targets) return spec;
  const targets = await fleetTargetsOf(spec, targetsFile);
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
