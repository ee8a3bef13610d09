/**
 * A fleet whose targets come from a catalog query: the names it returned,
 * checked against the targets the workers serve, and the waves pinned to
 * names so the workflow runs exactly the targets `start` resolved. Pure.
 */
import { TARGET_NAME } from './ids';
import { planWaves, type FleetTarget, type WaveRule } from './waves';

export class TargetsQueryError extends Error {}

/** The served targets the query named, in name order; a name that is not a target name, or not served, is an error naming it. */
export function queriedTargets<T extends FleetTarget>(served: T[], names: unknown[], where: string): T[] {
  const bad = names.filter((n) => typeof n !== 'string' || !TARGET_NAME.test(n));
  if (bad.length)
    throw new TargetsQueryError(
      `targets.query: returned ${bad.length} value${bad.length === 1 ? '' : 's'} that ${bad.length === 1 ? 'is' : 'are'} not a target name (${bad
        .slice(0, 5)
        .map((b) => JSON.stringify(b))
        .join(', ')}); its first column must be target names: letters, digits, _, . and -`,
    );
  const byName = new Map(served.map((t) => [t.name, t]));
  const wanted = [...new Set(names as string[])];
  const unknown = wanted.filter((n) => !byName.has(n));
  if (unknown.length)
    throw new TargetsQueryError(
      `targets.query: returned ${unknown.length} name${unknown.length === 1 ? '' : 's'} no target of ${where} has: ${unknown
        .slice(0, 10)
        .join(
          ', ',
        )}${unknown.length > 10 ? `, and ${unknown.length - 10} more` : ''}; add them to the targets file the workers read, or change the query`,
    );
  if (!wanted.length) throw new TargetsQueryError('targets.query: returned no rows; a fleet needs at least one target');
  return wanted.map((n) => byName.get(n)!).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The waves with every selector replaced by the names it takes among
 * `targets`: the workflow, which plans over everything its workers serve,
 * then takes exactly these (a wave that took none names none).
 */
export function pinWaves(targets: FleetTarget[], waves: WaveRule[]): WaveRule[] {
  const planned = planWaves(targets, waves).waves;
  return waves.map((w, i) => ({ ...w, select: { names: planned[i]?.targets ?? [] } }));
}
