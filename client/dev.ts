import { UsageError } from './errors';
import { startDevStack, projectRoot, formatEnv, writeEnvFile, preferredDevPorts } from '../devstack';

export interface DevOptions {
  fresh?: boolean;
  stateDir?: string;
  temporalPort?: string;
  uiPort?: string;
  postgresPort?: string;
  /** The addresses as one JSON object instead of NAME=value lines. */
  json?: boolean;
}

/** `stagefill dev`: the embedded stack in the foreground until SIGINT/SIGTERM, on stable addresses. */
export async function runDev(opts: DevOptions): Promise<number> {
  const root = projectRoot();
  let ports;
  try {
    ports = preferredDevPorts({ temporal: opts.temporalPort, ui: opts.uiPort, postgres: opts.postgresPort });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const stack = await startDevStack({
    root,
    stateDir: opts.stateDir,
    fresh: opts.fresh,
    ports,
    log: (m) => process.stderr.write(`stagefill dev: ${m}\n`),
  });
  // listen before saying "ready": whoever reads that line may signal at once
  const stopRequested = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  // Signal listeners do not keep Node alive; with a reused stack (TEMPORAL_ADDRESS, DATABASE_URL) nothing else would.
  const keepAlive = setInterval(() => {}, 1 << 30);
  const file = writeEnvFile(stack.stateDir, stack.env);
  process.stdout.write((opts.json ? JSON.stringify(stack.env) : formatEnv(stack.env)) + '\n');
  process.stderr.write(`stagefill dev: ready; \`source ${file}\` in another shell; Ctrl-C stops\n`);
  await stopRequested;
  clearInterval(keepAlive);
  process.stderr.write('stagefill dev: stopping\n');
  await stack.stop();
  return 0;
}
