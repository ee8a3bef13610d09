import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseSecrets, secretKey } from '../activities/webhook-signature';

const hostPort = z.string().regex(/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:7233');

const postgresUrl = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return u.protocol === 'postgres:' || u.protocol === 'postgresql:';
  } catch {
    return false;
  }
}, 'expected a postgres:// URL, e.g. postgres://user:password@host:5432/db');

const optionalPath = z.string().min(1).optional();

const httpUrl = (example: string) =>
  z.string().refine((v) => {
    try {
      const u = new URL(v);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  }, `expected an http:// or https:// URL, e.g. ${example}`);

/** Every setting the worker and the CLI read from the environment; the names are the variables. */
export const workerConfigSchema = z.object({
  TEMPORAL_ADDRESS: hostPort.default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  STAGEFILL_TASK_QUEUE: z.string().min(1).default('stagefill'),
  DATABASE_URL: postgresUrl,
  /** Prometheus metrics on this port (0 = off). */
  STAGEFILL_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  STAGEFILL_DB_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(20),
  STAGEFILL_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).max(1000).default(100),
  /** A prebuilt workflow bundle (bundleWorkflowCode); skips bundling at start. */
  STAGEFILL_WORKFLOW_BUNDLE: optionalPath,
  /** Every notification of the runs this worker's workflows report also goes here (docs/operations.md "Notifications"). */
  STAGEFILL_WEBHOOK_URL: httpUrl('https://hooks.slack.com/services/T000/B000/XXXX').optional(),
  /** Signs every notification (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature); several, space-separated, while rotating. */
  STAGEFILL_WEBHOOK_SECRET: z
    .string()
    .refine(
      (v) => parseSecrets(v).length > 0 && parseSecrets(v).every((x) => secretKey(x) !== undefined),
      'expected whsec_ followed by base64 of at least 24 random bytes, e.g. whsec_$(openssl rand -base64 32); several separated by spaces while rotating',
    )
    .optional(),
  /** The Temporal Web UI, for the links in notifications; TEMPORAL_UI (what `stagefill dev` writes) when unset. */
  STAGEFILL_WEB_UI_URL: httpUrl('http://127.0.0.1:8233').optional(),
  TEMPORAL_UI: httpUrl('http://127.0.0.1:8233').optional(),
  /** A targets file (name -> { url, tags }): the worker also serves these databases for fleets (docs/operations.md "Fleets"). */
  STAGEFILL_TARGETS: optionalPath,
  /** With STAGEFILL_TARGETS: the most connections this process opens to its targets in total (each target's pool gets its share). */
  STAGEFILL_FLEET_MAX_CONNECTIONS: z.coerce.number().int().min(2).max(10000).default(100),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** Temporal mTLS: client certificate and key (both or neither), optional CA. */
  TEMPORAL_TLS_CERT: optionalPath,
  TEMPORAL_TLS_KEY: optionalPath,
  TEMPORAL_TLS_CA: optionalPath,
  TEMPORAL_TLS_SERVER_NAME: z.string().optional(),
  /**
   * Worker Versioning: the worker deployment this worker belongs to. Unset
   * (the default): an unversioned worker, as before. See docs/operations.md.
   */
  STAGEFILL_DEPLOYMENT: z
    .string()
    .min(1)
    .regex(/^[^/]+$/, 'a deployment name without "/"')
    .optional(),
  /** This worker's build id within the deployment (default: stagefill's package version). */
  STAGEFILL_BUILD_ID: z
    .string()
    .min(1)
    .regex(/^[^/]+$/, 'a build id without "/"')
    .optional(),
  /** true: once polling, the worker makes its build the deployment's current version (one-step upgrades, the dev stack). */
  STAGEFILL_SET_CURRENT_VERSION: z
    .enum(['true', 'false', '1', '0'], { errorMap: () => ({ message: 'expected true or false' }) })
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
});

export type WorkerConfig = z.infer<typeof workerConfigSchema>;

/** A bad setting: the CLI and the worker exit 2. */
export class ConfigError extends Error {
  readonly exitCode = 2;
}

/** Parses the environment; a bad value names the variable and what is wrong. */
export function loadWorkerConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<keyof WorkerConfig, string>> = {},
): WorkerConfig {
  const raw: Record<string, string | undefined> = {};
  for (const key of Object.keys(workerConfigSchema.shape)) {
    const v = overrides[key as keyof WorkerConfig] ?? env[key];
    if (v !== undefined && v !== '') raw[key] = v;
  }
  const parsed = workerConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const name = String(i.path[0]);
      const msg = i.code === 'invalid_type' && i.received === 'undefined' ? 'is not set' : i.message;
      return `${name}: ${msg}`;
    });
    throw new ConfigError(lines.join('; '));
  }
  const cfg = parsed.data;
  if (Boolean(cfg.TEMPORAL_TLS_CERT) !== Boolean(cfg.TEMPORAL_TLS_KEY)) {
    throw new ConfigError('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together: set both for mTLS, or neither');
  }
  if (cfg.STAGEFILL_BUILD_ID && !cfg.STAGEFILL_DEPLOYMENT) {
    throw new ConfigError(
      'STAGEFILL_BUILD_ID is set but STAGEFILL_DEPLOYMENT is not: set the deployment name too for worker versioning, or unset both',
    );
  }
  if (cfg.STAGEFILL_SET_CURRENT_VERSION && !cfg.STAGEFILL_DEPLOYMENT) {
    throw new ConfigError(
      'STAGEFILL_SET_CURRENT_VERSION needs STAGEFILL_DEPLOYMENT: a worker without a deployment has no version to make current',
    );
  }
  return cfg;
}

/** stagefill's package version: the default build id. */
export function packageVersion(): string {
  for (const dir of [path.join(__dirname, '..'), path.join(__dirname, '..', '..')]) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'stagefill' && pkg.version) return pkg.version;
    }
  }
  return 'unknown';
}

/** The worker's deployment version, or undefined for an unversioned worker. */
export function deploymentVersion(cfg: WorkerConfig): { deploymentName: string; buildId: string } | undefined {
  if (!cfg.STAGEFILL_DEPLOYMENT) return undefined;
  return { deploymentName: cfg.STAGEFILL_DEPLOYMENT, buildId: cfg.STAGEFILL_BUILD_ID ?? packageVersion() };
}

/** The URL with its password replaced, for logs and messages. */
